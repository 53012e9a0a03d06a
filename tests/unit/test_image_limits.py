"""Decompression bombs: a few KB of PNG that declare more pixels than the limit are skipped
and reported from their header, never decoded, wherever images are read."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from PIL import Image, ImageFile

from annotation_loop.data.storage import DEFAULT_MAX_IMAGE_PIXELS, DataSource, ObjectStore
from annotation_loop.task_types.image import ImageClassification
from annotation_loop.vision.images import (
    CorruptImageError,
    ImageItem,
    ImageTooLargeError,
    decode_image,
    eval_transform,
    image_loader,
)

# Just over our limit (PIL alone would decode it silently), between PIL's limit and twice
# that (PIL would only warn), and far over (PIL refuses it too).
BOMB_SIZES = [(8000, 6300), (10000, 10000), (20000, 20000)]


def png(size: tuple[int, int], mode: str = "1") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def bombs() -> dict[tuple[int, int], bytes]:
    return {size: png(size) for size in BOMB_SIZES}


@pytest.fixture(autouse=True)
def no_large_decodes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fails a test that decodes an image of more than a megapixel, before it allocates it;
    and restores PIL's limit, which reading from a store sets."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", DEFAULT_MAX_IMAGE_PIXELS)
    real_load = ImageFile.ImageFile.load

    def guarded_load(image: ImageFile.ImageFile) -> object:
        width, height = image.size
        assert width * height <= 1_000_000, f"a {width}x{height} image was decoded"
        return real_load(image)

    monkeypatch.setattr(ImageFile.ImageFile, "load", guarded_load)


def test_the_default_limit_is_set_for_pil() -> None:
    assert Image.MAX_IMAGE_PIXELS == DEFAULT_MAX_IMAGE_PIXELS == 50_000_000


@pytest.mark.parametrize("size", BOMB_SIZES)
def test_a_decompression_bomb_is_refused_from_its_header(
    bombs: dict[tuple[int, int], bytes], size: tuple[int, int]
) -> None:
    assert len(bombs[size]) < 100_000  # a few KB that would decode to 50+ megapixels
    with pytest.raises(ImageTooLargeError) as excinfo:
        decode_image(bombs[size], key="batch_1/bomb.png")
    message = str(excinfo.value)
    assert "batch_1/bomb.png" in message and "LOOP_MAX_IMAGE_PIXELS" in message
    assert "\n" not in message
    assert isinstance(excinfo.value, CorruptImageError)  # skipped like a corrupt file


def test_only_png_and_jpeg_are_decoded() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, format="BMP")
    with pytest.raises(CorruptImageError):
        decode_image(buffer.getvalue(), key="batch_1/really-a-bitmap.png")
    assert decode_image(png((4, 4), "RGB")).size == (4, 4)


def test_the_data_loader_skips_bombs_and_reports_them(bombs: dict[tuple[int, int], bytes]) -> None:
    items = [ImageItem("bomb", bombs[(10000, 10000)], -1), ImageItem("ok", png((8, 8), "L"), -1)]
    (batch,) = image_loader(items, eval_transform(8), batch_size=2, num_workers=0)
    assert batch.keys == ["ok"] and batch.corrupt_keys == ["bomb"]


@pytest.fixture
def store(tmp_path: Path, bombs: dict[tuple[int, int], bytes]) -> ObjectStore:
    store = ObjectStore(DataSource(root_uri=str(tmp_path), dataset="scans"))
    store.write_bytes("batch_1/ok.png", png((28, 28), "L"))
    for width, height in BOMB_SIZES:
        store.write_bytes(f"batch_1/bomb-{width}x{height}.png", bombs[(width, height)])
    return store


def test_reading_inputs_skips_bombs_with_a_logged_reason(
    store: ObjectStore, caplog: pytest.LogCaptureFixture
) -> None:
    keys = ["batch_1/ok.png", *[f"batch_1/bomb-{w}x{h}.png" for w, h in BOMB_SIZES]]

    with caplog.at_level(logging.WARNING):
        inputs = dict(
            ImageClassification().load_inputs(store, ((k, store.uri_for(k)) for k in keys))
        )

    assert inputs["batch_1/ok.png"] is not None
    assert [key for key, data in inputs.items() if data is None] == keys[1:]
    assert caplog.text.count("LOOP_MAX_IMAGE_PIXELS") == len(BOMB_SIZES)


def test_the_pixel_limit_comes_from_the_data_source(store: ObjectStore) -> None:
    def read(max_image_pixels: int, key: str) -> bytes | None:
        source = store.source.model_copy(update={"max_image_pixels": max_image_pixels})
        ((_, data),) = ImageClassification().load_inputs(
            ObjectStore(source), [(key, store.uri_for(key))]
        )
        return data

    assert read(28 * 28 - 1, "batch_1/ok.png") is None
    assert read(28 * 28, "batch_1/ok.png") is not None
    assert Image.MAX_IMAGE_PIXELS == 28 * 28  # what decoding in this process now allows
    assert read(60_000_000, "batch_1/bomb-8000x6300.png") is not None
