"""Run an exported Qwen2-VL / Qwen2.5-VL / Qwen3-VL vision tower with ONNX Runtime: numpy, pillow and
onnxruntime only.

``qtool export onnx MODEL --out DIR`` writes ``DIR/vision.onnx`` (plus ``vision.fp16.onnx``,
``vision.int8.onnx``, ``vision.int4.onnx`` when asked) and ``DIR/vision.json``, the preprocessing
and rotary parameters this module reads. The graph takes per-patch inputs for any resolution and
any number of images; this module computes them the way transformers does:

* preprocessing (the Qwen2-VL image processor's PIL path): RGB with transparency on white, smart
  resize to multiples of ``patch_size * merge_size`` with ``min_pixels <= h * w <= max_pixels``
  (bicubic unless the processor says otherwise), rescale by 1/255, normalize with the processor's mean/std, and patchify to
  ``[patches, channels * temporal_patch_size * patch_size**2]`` in merge-block order, each frame
  repeated ``temporal_patch_size`` times;
* the rotary cos/sin of each patch's (row, column), the image each patch belongs to, for
  Qwen2.5-VL the attention window of each patch, and for Qwen3-VL the bilinear taps and weights
  that resample its learned position table to the image's grid.

Example::

    from PIL import Image
    from qtool.runtime.vision import VisionEncoder

    encoder = VisionEncoder("out/tiny-onnx", precision="int8")
    result = encoder.encode([Image.open("a.png"), Image.open("b.jpg")])
    result.embeds        # float32 [tokens, hidden]: both images' tokens, in order
    result.grids         # ((1, h1, w1), (1, h2, w2)) in patches, as image_grid_thw
    result.per_image()   # one [tokens_i, hidden] array per image
    result.deepstack     # Qwen3-VL: float32 [DeepStack taps, tokens, hidden], else None

The embeddings replace the ``<|image_pad|>`` tokens of the language model's input, in order; Qwen3-VL
adds ``deepstack[i]`` to the hidden states of those tokens after decoder layer ``i``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from qtool.errors import QtoolError
from qtool.runtime import onnx_io as io

Grid = tuple[int, int, int]   # (frames / temporal_patch_size, rows, columns) in patches


@dataclass(frozen=True)
class VisionConfig:
    """vision.json, written by the export."""

    model_type: str
    inputs: tuple[str, ...]
    files: dict
    patch_size: int
    merge_size: int
    temporal_patch_size: int
    in_channels: int
    image_mean: tuple[float, ...]
    image_std: tuple[float, ...]
    rescale_factor: float
    min_pixels: int
    max_pixels: int
    head_dim: int
    rope_theta: float
    hidden_size: int
    resample: int = 3                       # PIL filter code; 3 is bicubic, the Qwen2-VL default
    window_size: int | None = None
    fullatt_block_indexes: tuple[int, ...] | None = None
    position_grid_side: int | None = None             # Qwen3-VL: the learned position table is side x side

    @classmethod
    def load(cls, folder: str | Path) -> VisionConfig:
        file = Path(folder) / io.CONFIG_FILE
        if not file.is_file():
            raise QtoolError(f"no {io.CONFIG_FILE} in {folder}", "pass a folder written by `qtool export onnx`")
        return cls.from_dict(json.loads(file.read_text()))

    @classmethod
    def from_dict(cls, data: dict) -> VisionConfig:
        fields = cls.__dataclass_fields__
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in fields})

    @property
    def windowed(self) -> bool:
        return self.window_size is not None


@dataclass(frozen=True)
class VisionOutput:
    embeds: np.ndarray             # [sum of tokens, hidden]
    grids: tuple[Grid, ...]        # one (t, h, w) per image, in patches
    merge_size: int = 2
    deepstack: np.ndarray | None = None   # [DeepStack taps, sum of tokens, hidden] (Qwen3-VL)

    def splits(self) -> np.ndarray:
        return np.cumsum([t * h * w // self.merge_size**2 for t, h, w in self.grids])[:-1]

    def per_image(self) -> list[np.ndarray]:
        return np.split(self.embeds, self.splits())

    def deepstack_per_image(self) -> list[list[np.ndarray]]:
        """One list per DeepStack tap of [tokens_i, hidden] arrays, one per image (empty without DeepStack)."""
        return [] if self.deepstack is None else [np.split(tap, self.splits()) for tap in self.deepstack]


# ---------------------------------------------------------------- preprocessing

def smart_resize(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """The Qwen2-VL target size: sides multiples of ``factor``, area within [min_pixels, max_pixels]."""
    if max(height, width) / min(height, width) > 200:
        raise QtoolError(f"image of {width}x{height} is too elongated", "keep the aspect ratio under 200:1")
    h_bar, w_bar = round(height / factor) * factor, round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def to_rgb(image: Image.Image | np.ndarray | str | Path) -> Image.Image:
    if isinstance(image, (str, Path)):
        image = Image.open(image)
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    if "A" in image.getbands() or image.info.get("transparency") is not None:
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    return image.convert("RGB")


def preprocess(image, config: VisionConfig) -> tuple[np.ndarray, Grid]:
    """One image -> (patches [h * w, C * T * P * P] float32, grid (1, h, w))."""
    image = to_rgb(image)
    p, m, tp = config.patch_size, config.merge_size, config.temporal_patch_size
    height, width = smart_resize(image.height, image.width, p * m, config.min_pixels, config.max_pixels)
    if (height, width) != (image.height, image.width):
        image = image.resize((width, height), resample=Image.Resampling(config.resample))
    pixels = (np.asarray(image).astype(np.float64) * config.rescale_factor).astype(np.float32)
    pixels = (pixels - np.array(config.image_mean, np.float32)) / np.array(config.image_std, np.float32)
    pixels = pixels.transpose(2, 0, 1)                                    # C, H, W
    gh, gw = height // p, width // p
    c = pixels.shape[0]
    patches = pixels.reshape(c, gh // m, m, p, gw // m, m, p).transpose(1, 4, 2, 5, 0, 3, 6)
    patches = np.broadcast_to(patches[:, :, :, :, :, None], (*patches.shape[:5], tp, p, p))
    return np.ascontiguousarray(patches.reshape(gh * gw, c * tp * p * p)), (1, gh, gw)


# ---------------------------------------------------------------- auxiliary graph inputs

def position_ids(grids: Sequence[Grid], merge: int) -> np.ndarray:
    """(row, column) of each patch, in merge-block order: [patches, 2] int64."""
    out = []
    for t, h, w in grids:
        rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
        block = (h // merge, merge, w // merge, merge)
        rows = rows.reshape(block).transpose(0, 2, 1, 3).reshape(-1)
        cols = cols.reshape(block).transpose(0, 2, 1, 3).reshape(-1)
        out.append(np.tile(np.stack([rows, cols], axis=-1), (t, 1)))
    return np.concatenate(out).astype(np.int64)


def rotary(positions: np.ndarray, head_dim: int, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """Axial 2D rotary cos/sin [patches, head_dim]: (row angles, column angles) twice."""
    half = head_dim // 2
    inv_freq = (1.0 / np.float32(theta) ** (np.arange(0, half, 2, dtype=np.float32) / np.float32(half)))
    freqs = positions[..., None].astype(np.float32) * inv_freq.astype(np.float32)   # [n, 2, head_dim / 4]
    angles = np.concatenate([freqs[:, 0], freqs[:, 1]], axis=-1)
    angles = np.concatenate([angles, angles], axis=-1)
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


def segment_ids(grids: Sequence[Grid]) -> np.ndarray:
    """Which image frame each patch belongs to: full attention stays inside one frame."""
    sizes = [h * w for t, h, w in grids for _ in range(t)]
    return np.repeat(np.arange(len(sizes)), sizes).astype(np.int64)


def window_ids(grids: Sequence[Grid], merge: int, window_size: int, patch_size: int) -> np.ndarray:
    """Qwen2.5-VL: the attention window of each patch (windows of window_size pixels, per frame)."""
    side = window_size // merge // patch_size          # window side in merged tokens
    out, offset = [], 0
    for t, h, w in grids:
        bh, bw = h // merge, w // merge
        across = -(-bw // side)
        rows, cols = np.meshgrid(np.arange(bh) // side, np.arange(bw) // side, indexing="ij")
        frame = np.repeat((rows * across + cols).reshape(-1), merge * merge)
        count = -(-bh // side) * across
        for _ in range(t):
            out.append(frame + offset)
            offset += count
    return np.concatenate(out).astype(np.int64)


def position_taps(positions: np.ndarray, grids: Sequence[Grid], side: int) -> tuple[np.ndarray, np.ndarray]:
    """Qwen3-VL: the learned ``side x side`` position table resized to each image's grid (bilinear, corners
    aligned) as 4 taps per patch: indices [patches, 4] int64 and weights [patches, 4] float32."""
    sizes = np.concatenate([np.repeat([[h, w]], t * h * w, axis=0) for t, h, w in grids]).astype(np.float32)
    offsets = np.arange(2, dtype=np.float32)             # the floor tap and the next one
    taps, weights = [], []
    for axis in (0, 1):
        src = positions[:, axis].astype(np.float32) * np.float32(side - 1) / np.maximum(sizes[:, axis] - 1, 1)
        floor = np.floor(src)[:, None]
        taps.append(np.clip(floor.astype(np.int64) + offsets.astype(np.int64), 0, side - 1))
        weights.append(np.clip(1 - np.abs(src[:, None] - floor - offsets), 0, None))
    indices = (taps[0][:, :, None] * side + taps[1][:, None, :]).reshape(-1, 4)
    return indices, (weights[0][:, :, None] * weights[1][:, None, :]).reshape(-1, 4).astype(np.float32)


def graph_inputs(pixel_values: np.ndarray, grids: Sequence[Grid], config: VisionConfig) -> dict[str, np.ndarray]:
    positions = position_ids(grids, config.merge_size)
    cos, sin = rotary(positions, config.head_dim, config.rope_theta)
    feeds = {io.PIXEL_VALUES: np.asarray(pixel_values, np.float32), io.ROTARY_COS: cos, io.ROTARY_SIN: sin,
             io.SEGMENT_IDS: segment_ids(grids)}
    if config.windowed:
        feeds[io.WINDOW_IDS] = window_ids(grids, config.merge_size, config.window_size, config.patch_size)
    if config.position_grid_side:
        feeds[io.POS_INDICES], feeds[io.POS_WEIGHTS] = position_taps(positions, grids, config.position_grid_side)
    return {name: feeds[name] for name in config.inputs}


# ---------------------------------------------------------------- the session

class VisionEncoder:
    """An ONNX Runtime session over one exported precision, plus the preprocessing around it."""

    def __init__(self, folder: str | Path, precision: str = "fp32", *,
                 providers: Sequence[str] = ("CPUExecutionProvider",), threads: int | None = None):
        import onnxruntime as ort

        self.folder = Path(folder)
        self.config = VisionConfig.load(self.folder)
        name = self.config.files.get(precision)
        file = self.folder / name if name else None
        if file is None or not file.is_file():
            have = [p for p, f in self.config.files.items() if (self.folder / f).is_file()]
            raise QtoolError(f"{self.folder} has no {precision} graph", f"exported precisions: {', '.join(have)}")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.precision = precision
        self.session = ort.InferenceSession(str(file), options, providers=list(providers))

    def run(self, pixel_values: np.ndarray, grids: Sequence[Grid]) -> VisionOutput:
        """Embeddings of already-preprocessed patches (as the transformers processor returns them)."""
        grids = tuple(tuple(int(v) for v in g) for g in grids)
        embeds, *deepstack = self.session.run(None, graph_inputs(pixel_values, grids, self.config))
        return VisionOutput(embeds, grids, self.config.merge_size, deepstack[0] if deepstack else None)

    def encode(self, images: Sequence) -> VisionOutput:
        """Images (PIL, uint8 HWC arrays or paths) -> their embeddings, in order, in one call."""
        done = [preprocess(image, self.config) for image in images]
        return self.run(np.concatenate([patches for patches, _ in done]), [grid for _, grid in done])
