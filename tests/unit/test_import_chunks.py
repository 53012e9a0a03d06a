"""Import requests are bounded by bytes as well as by count."""

import json

from annotation_loop.labelstudio.chunked_imports import json_array, json_chunks


def chunks_of(texts: list[str], max_items: int, max_bytes: int) -> list[list[str]]:
    chunks = json_chunks(texts, lambda text: {"data": {"text": text}}, max_items, max_bytes)
    return [[text for text, _ in chunk] for chunk in chunks]


def test_long_texts_are_cut_into_requests_within_the_byte_budget():
    texts = [f"{i}:" + "é" * 3000 for i in range(10)]  # ~6 KB of UTF-8 each
    chunks = list(json_chunks(texts, lambda text: {"data": {"text": text}}, 1000, 16_000))
    assert [len(chunk) for chunk in chunks] == [2, 2, 2, 2, 2]
    bodies = [json_array(encoded for _, encoded in chunk) for chunk in chunks]
    assert all(len(body) <= 16_000 for body in bodies)
    sent = [task["data"]["text"] for body in bodies for task in json.loads(body)]
    assert sent == texts, "every text once, in order"


def test_the_count_bounds_short_items_and_an_oversized_item_goes_alone():
    assert chunks_of(list("abcdefg"), 3, 10_000) == [list("abc"), list("def"), ["g"]]
    huge = "x" * 50_000
    assert chunks_of(["a", huge, "b"], 100, 1_000) == [["a"], [huge], ["b"]]


def test_the_body_is_exactly_what_httpx_would_send():
    items = [{"text": "naïve \u2603", "score": 0.5}, {"text": 'quote " and \\ slash'}]
    [chunk] = json_chunks(items, lambda item: item, 10, 10_000)
    body = json_array(encoded for _, encoded in chunk)
    assert body == json.dumps(items, ensure_ascii=False, separators=(",", ":")).encode()


def test_a_full_chunk_goes_before_the_next_item_is_taken():
    """Predictions stream from the model: a chunk must not wait for an item beyond it."""
    taken: list[int] = []

    def stream():
        for i in range(5):
            taken.append(i)
            yield i

    chunks = json_chunks(stream(), lambda i: i, 2, 10_000)
    assert [i for i, _ in next(chunks)] == [0, 1] and taken == [0, 1]
