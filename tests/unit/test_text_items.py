import hashlib
import json

import pytest

from annotation_loop.text.items import (
    TEXT_SUFFIXES,
    TextFileError,
    TextRow,
    item_key,
    parse_text_file,
    text_hash,
)

COMPOSED = "caf\u00e9"  # é as one code point
DECOMPOSED = "cafe\u0301"  # e + combining acute accent


def test_txt_file_is_one_item_whose_hash_is_the_files_md5() -> None:
    data = b"A whole review.\nSecond line."
    parsed = parse_text_file("batch_1/review.txt", data)
    assert parsed.rows == [TextRow("", "A whole review.\nSecond line.")]
    assert parsed.problems == []
    assert parsed.encoding == "utf-8"
    assert text_hash(parsed.rows[0].text) == f"md5:{hashlib.md5(data).hexdigest()}"


def test_json_list_and_object_with_rows() -> None:
    rows = [{"id": 1, "text": "one"}, {"id": "b", "text": "two"}]
    as_list = parse_text_file("b/x.json", json.dumps(rows).encode())
    assert as_list.rows == [TextRow("1", "one"), TextRow("b", "two")]
    for name in ("data", "rows", "items"):
        wrapped = parse_text_file("b/x.json", json.dumps({"meta": 1, name: rows}).encode())
        assert wrapped.rows == as_list.rows


def test_json_without_a_row_list_is_an_error() -> None:
    with pytest.raises(TextFileError, match=r"b/x\.json holds neither a JSON list"):
        parse_text_file("b/x.json", b'{"text": "just one"}')
    with pytest.raises(TextFileError, match=r"b/x\.json is not valid JSON"):
        parse_text_file("b/x.json", b'[{"id": 1, "text": "a"}')


@pytest.mark.parametrize("suffix", [".jsonl", ".ndjson"])
def test_json_lines_bad_line_does_not_stop_the_others(suffix: str) -> None:
    data = b'{"id": 1, "text": "first"}\r\n\r\n{"id": 2, "text": \n{"id": 3, "text": "third"}\n'
    parsed = parse_text_file(f"batch_1/reviews{suffix}", data)
    assert parsed.rows == [TextRow("1", "first"), TextRow("3", "third")]
    assert parsed.problems == ["line 3 is not JSON"]


def test_custom_field_names() -> None:
    data = b'{"review_id": 7, "body": "fine"}\n'
    parsed = parse_text_file("b/r.jsonl", data, text_field="body", id_field="review_id")
    assert parsed.rows == [TextRow("7", "fine")]


def test_csv_with_quoted_newlines_and_crlf() -> None:
    data = b'id,text,stars\r\n1,"multi\r\nline, with comma",5\r\n2,plain,3\r\n'
    parsed = parse_text_file("batch_2/reviews.csv", data)
    assert parsed.rows == [TextRow("1", "multi\nline, with comma"), TextRow("2", "plain")]
    assert parsed.problems == []


def test_csv_without_the_text_column_names_file_and_settings() -> None:
    with pytest.raises(TextFileError) as error:
        parse_text_file("batch_1/reviews.csv", b"id,body\n1,hello\n")
    message = str(error.value)
    assert "\n" not in message
    assert "batch_1/reviews.csv has no 'text' field (found: 'body', 'id')" in message
    assert "LOOP_TEXT_FIELD" in message and "LOOP_ID_FIELD" in message


def test_json_rows_all_missing_the_id_field_is_an_error() -> None:
    with pytest.raises(TextFileError, match=r"has no 'uid' field .*\(now 'text' / 'uid'\)"):
        parse_text_file("b/x.jsonl", b'{"id": 1, "text": "a"}\n', id_field="uid")


def test_row_problems_skip_only_that_row() -> None:
    rows = [
        {"id": 1, "text": "kept"},
        {"id": 2, "text": "   \n "},
        {"text": "no id"},
        {"id": 4},
        {"id": 1, "text": "same id again"},
        {"id": 6, "text": 42},
        "not an object",
        {"id": 8.5, "text": "odd id"},
        {"id": True, "text": "bool id"},
    ]
    parsed = parse_text_file("b/x.json", json.dumps(rows).encode())
    assert parsed.rows == [TextRow("1", "kept")]
    assert parsed.problems == [
        "row 2 has an empty text",
        "row 3 has no 'id'",
        "row 4 has no 'text'",
        "duplicate id '1' (row 5), kept the first",
        "row 6 has a 'text' of type int, not text",
        "row 7 is not an object",
        "row 8 has an 'id' of type float, not text or integer",
        "row 9 has an 'id' of type bool, not text or integer",
    ]


def test_empty_txt_file_is_skipped_with_a_note() -> None:
    parsed = parse_text_file("b/blank.txt", b" \r\n\t")
    assert parsed.rows == []
    assert parsed.problems == ["the file has an empty text"]


def test_utf8_bom_is_dropped() -> None:
    parsed = parse_text_file("b/r.csv", b"\xef\xbb\xbfid,text\n1,hi\n")
    assert parsed.rows == [TextRow("1", "hi")]
    assert parsed.encoding == "utf-8"


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_with_bom(codec: str) -> None:
    bom = "\ufeff".encode(codec)
    parsed = parse_text_file("b/r.txt", bom + f"{COMPOSED} crème".encode(codec))
    assert parsed.rows == [TextRow("", f"{COMPOSED} crème")]
    assert parsed.encoding == "utf-16"
    assert parsed.problems == []


def test_legacy_cp1252_is_read_with_a_note() -> None:
    parsed = parse_text_file("b/r.txt", "Café – “quoted” €5".encode("cp1252"))
    assert parsed.rows == [TextRow("", "Café – “quoted” €5")]
    assert parsed.encoding == "cp1252"
    assert len(parsed.problems) == 1
    assert "5 byte(s) are not UTF-8" in parsed.problems[0]
    assert "cp1252" in parsed.problems[0]


def test_mixed_utf8_and_cp1252_keeps_the_utf8_parts() -> None:
    data = "naïve ".encode() + "café".encode("cp1252") + b" \x81"  # 0x81: undefined in cp1252
    parsed = parse_text_file("b/r.txt", data)
    assert parsed.rows == [TextRow("", "naïve café \ufffd")]
    assert parsed.encoding == "utf-8+cp1252"
    assert "2 byte(s) are not UTF-8" in parsed.problems[0]


def test_newlines_and_unicode_are_normalised_so_equal_texts_hash_equal() -> None:
    crlf = parse_text_file("b/a.txt", f"{DECOMPOSED}\r\nend\rnow".encode())
    lf = parse_text_file("b/b.txt", f"{COMPOSED}\nend\nnow".encode())
    assert crlf.rows[0].text == lf.rows[0].text == f"{COMPOSED}\nend\nnow"
    assert text_hash(crlf.rows[0].text) == text_hash(lf.rows[0].text)
    jsonl = parse_text_file("b/c.jsonl", json.dumps({"id": 1, "text": DECOMPOSED}).encode())
    assert jsonl.rows[0].text == COMPOSED
    assert text_hash(COMPOSED) != text_hash(DECOMPOSED)  # why normalising matters


def test_text_hash_and_item_key() -> None:
    assert text_hash("abc") == "md5:900150983cd24fb0d6963f7d28e17f72"
    assert item_key("batch_1/reviews.jsonl", "42") == "batch_1/reviews.jsonl#42"
    assert item_key("batch_1/review.txt", "") == "batch_1/review.txt"


def test_other_suffixes_are_refused() -> None:
    assert ".txt" in TEXT_SUFFIXES
    with pytest.raises(TextFileError, match=r"b/x\.png is not a text file"):
        parse_text_file("b/x.png", b"\x89PNG")


def test_csv_short_and_long_rows() -> None:
    parsed = parse_text_file("b/r.csv", b"id,text\n1\n2,two,extra\n3,three\n")
    assert parsed.rows == [TextRow("2", "two"), TextRow("3", "three")]
    assert parsed.problems == ["row 1 has no 'text'"]
