"""Image bytes -> normalised tensors, batched by a DataLoader that skips corrupt files.

An image is decoded only if its header says it has at most `Image.MAX_IMAGE_PIXELS` pixels
(LOOP_MAX_IMAGE_PIXELS): a small PNG can declare gigapixels (a decompression bomb), and PIL on
its own only warns up to twice its limit.
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from collections.abc import Callable, Sequence
from functools import partial
from typing import NamedTuple

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from annotation_loop.data.storage import DEFAULT_MAX_IMAGE_PIXELS
from annotation_loop.errors import LoopError

# What the loop lists (.png, .jpg, .jpeg); PIL's other decoders are never tried.
IMAGE_FORMATS = ("PNG", "JPEG")
Image.MAX_IMAGE_PIXELS = DEFAULT_MAX_IMAGE_PIXELS
# PIL warns of an image over its limit, which `_open` refuses and reports anyway.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Transform = Callable[[Image.Image], torch.Tensor]


class CorruptImageError(LoopError):
    """Bytes that should be an image cannot be decoded."""


class ImageTooLargeError(CorruptImageError):
    """An image with more pixels than the limit: a decompression bomb, or too big to label."""


def limit_image_pixels(max_pixels: int) -> None:
    """The most pixels an image may have to be decoded in this process (PIL's own limit)."""
    Image.MAX_IMAGE_PIXELS = max_pixels


def _too_large(key: str, size: str) -> ImageTooLargeError:
    return ImageTooLargeError(
        f"{key} is not decoded: {size}, more than the limit of {Image.MAX_IMAGE_PIXELS} "
        "pixels (LOOP_MAX_IMAGE_PIXELS); downscale it, or raise the limit if it is genuine"
    )


def _open(data: bytes, key: str) -> Image.Image:
    """The image with only its header read, if it is within the pixel limit."""
    try:
        image = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
    except Image.DecompressionBombError as e:  # over twice the limit: PIL stops by itself
        declared = re.search(r"\((\d+) pixels\)", str(e))
        raise _too_large(key, f"{declared[1]} pixels" if declared else "its size") from None
    width, height = image.size
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and width * height > limit:
        image.close()
        raise _too_large(key, f"{width}x{height} pixels")
    return image


def check_image_size(data: bytes, key: str) -> None:
    """Raises `ImageTooLargeError` if the header of `data` declares too many pixels; decodes
    nothing. Bytes that are no image pass: decoding reports them."""
    with contextlib.suppress(OSError, SyntaxError, ValueError):
        _open(data, key).close()


def decode_image(data: bytes, key: str = "image") -> Image.Image:
    """Decode `data` into an RGB image (grayscale becomes 3 identical channels)."""
    try:
        with _open(data, key) as image:
            # convert() decodes every pixel, so truncated files fail here rather than later.
            return image.convert("RGB")
    except (OSError, SyntaxError, ValueError) as e:
        # PIL reports some broken PNG chunks as SyntaxError.
        raise CorruptImageError(
            f"{key} is not a readable image ({e}): replace or delete it"
        ) from None


def train_transform(image_size: int) -> Transform:
    # Mild crops only: flips or rotations would change the meaning of digits and text.
    return v2.Compose(
        [
            v2.PILToTensor(),
            v2.RandomResizedCrop(image_size, scale=(0.8, 1.0), antialias=True),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


def eval_transform(image_size: int) -> Transform:
    return v2.Compose(
        [
            v2.PILToTensor(),
            v2.Resize(image_size, antialias=True),
            v2.CenterCrop(image_size),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


class ImageItem(NamedTuple):
    key: str
    data: bytes
    target: int  # class index; -1 when unknown (prediction)


class Batch(NamedTuple):  # a NamedTuple so that DataLoader(pin_memory=True) pins its tensors
    keys: list[str]
    images: torch.Tensor
    targets: torch.Tensor
    corrupt_keys: list[str]


_Decoded = tuple[str, torch.Tensor | None, int]


class _ImageDataset(Dataset[_Decoded]):
    def __init__(self, items: Sequence[ImageItem], transform: Transform) -> None:
        self.items = items
        self.transform = transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> _Decoded:
        key, data, target = self.items[index]
        try:
            image = decode_image(data, key)
        except CorruptImageError:
            return key, None, target
        return key, self.transform(image), target


def _collate(decoded: list[_Decoded]) -> Batch:
    good = [(key, tensor, target) for key, tensor, target in decoded if tensor is not None]
    return Batch(
        keys=[key for key, _, _ in good],
        images=torch.stack([tensor for _, tensor, _ in good]) if good else torch.empty(0),
        targets=torch.tensor([target for _, _, target in good], dtype=torch.long),
        corrupt_keys=[key for key, tensor, _ in decoded if tensor is None],
    )


def _limit_worker_pixels(max_pixels: int | None, worker_id: int) -> None:
    Image.MAX_IMAGE_PIXELS = max_pixels


def image_loader(
    items: Sequence[ImageItem],
    transform: Transform,
    batch_size: int,
    num_workers: int,
    shuffle_seed: int | None = None,
) -> DataLoader[_Decoded]:
    """Batches of decoded images; items are shuffled (reproducibly) when a seed is given."""
    generator = None if shuffle_seed is None else torch.Generator().manual_seed(shuffle_seed)
    return DataLoader(
        _ImageDataset(items, transform),
        batch_size=batch_size,
        shuffle=shuffle_seed is not None,
        generator=generator,  # also seeds the workers' random augmentations
        num_workers=num_workers,
        collate_fn=_collate,
        # A worker started with `spawn` re-imports this module: it gets this process's limit.
        worker_init_fn=partial(_limit_worker_pixels, Image.MAX_IMAGE_PIXELS),
        pin_memory=torch.cuda.is_available(),
        persistent_workers=num_workers > 0,
    )
