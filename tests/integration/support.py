"""Helpers the integration tests share (fixtures live in conftest.py)."""

import io

from PIL import Image

# A small image-classification project, as the Label Studio client tests use it.
CONFIG = (
    '<View><Image name="image" value="$image"/>'
    '<Choices name="label" toName="image"><Choice value="cat"/><Choice value="dog"/></Choices>'
    "</View>"
)


def png(color: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), color).save(buffer, format="PNG")
    return buffer.getvalue()
