"""An image file's pixel size and format, read from its header only (no pixel is decoded)."""

from __future__ import annotations

from pathlib import Path


def image_size(path: Path) -> tuple[int, int, str]:
    """(width, height, format) of the image at ``path``; format lower-case ("png", "jpeg", "webp").
    Pillow's ``open`` is lazy: it reads the header, a few hundred bytes. Raises ``OSError`` if the
    file is missing or not an image."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.width, image.height, (image.format or path.suffix.lstrip(".")).lower()
    except UnidentifiedImageError as exc:
        raise OSError(f"{path} is not an image Pillow can read") from exc


def decode_errors() -> tuple[type[BaseException], ...]:
    """What Pillow raises for a file it will not read: damaged, not an image, or over its
    decompression-bomb limit (imported only when asked)."""
    from PIL import Image

    return (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


def decode_problem(exc: BaseException) -> str:
    """``exc`` (one of ``decode_errors``) in words."""
    from PIL import Image

    if isinstance(exc, Image.DecompressionBombError):
        return "more pixels than Pillow decodes safely"
    return str(exc) or type(exc).__name__
