"""The single place where qtool opens a user's image.

Checks happen on the header before any pixel is decoded: a decompression
bomb is refused without allocating it, and so is an aspect ratio over
200:1, which Qwen-VL's processor (``smart_resize``) refuses. 8-bit modes are
converted to RGB (alpha composited on white, palettes expanded, CMYK
converted); 16-bit and float images are refused, since silently truncating
them changes what the model sees. An EXIF orientation tag is applied, as
``transformers.image_utils.load_image`` does, so a phone photo is upright.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from PIL import Image, ImageOps

from qtool.errors import QtoolError

MAX_PIXELS = 50_000_000
MAX_ASPECT = 200                   # smart_resize raises above this
CONVERTED_MODES = {"RGB", "L", "LA", "RGBA", "P", "PA", "CMYK", "YCbCr", "1", "LAB", "HSV", "RGBX", "RGBa", "La"}
FIX = "re-save it as an 8-bit RGB PNG or JPEG"


def shown(path) -> str:
    """A path for a one-line message: as is when printable, else escaped (no newlines, no control codes)."""
    text = str(path)
    return text if text.isprintable() else ascii(text)


def load_image(path: Path) -> Image.Image:
    """The image as RGB, or a QtoolError naming the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise QtoolError(f"image {shown(path)} does not exist", "fix the record's image path")
    if path.stat().st_size == 0:
        raise QtoolError(f"image {shown(path.name)} is an empty file", FIX)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if im.width == 0 or im.height == 0:
                    raise QtoolError(f"image {shown(path.name)} has zero size", FIX)
                if im.width * im.height > MAX_PIXELS:
                    raise QtoolError(f"image {shown(path.name)} has {im.width}x{im.height} pixels, over the "
                                     f"{MAX_PIXELS // 1_000_000} MP limit (decompression bomb?)", "downscale it")
                if max(im.size) / min(im.size) > MAX_ASPECT:
                    raise QtoolError(f"image {shown(path.name)} is {im.width}x{im.height}, an aspect ratio over "
                                     f"{MAX_ASPECT}:1 that Qwen-VL's processor refuses", "crop or pad it")
                if im.mode not in CONVERTED_MODES:
                    raise QtoolError(f"image {shown(path.name)} has mode {im.mode} (16-bit or float)", FIX)
                im.load()
                return _to_rgb(ImageOps.exif_transpose(im))
    except QtoolError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise QtoolError(f"image {shown(path.name)} is too large to decode safely (decompression bomb)",
                         "downscale it") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise QtoolError(f"image {shown(path.name)} cannot be decoded ({type(exc).__name__})", FIX) from None


def _to_rgb(im: Image.Image) -> Image.Image:
    if im.mode == "RGB":
        return im.copy()
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return im.convert("RGB")


def check_image(path: Path) -> str | None:
    """The problem with the image at ``path`` as one line, or None."""
    try:
        load_image(path)
    except QtoolError as exc:
        return str(exc)
    return None
