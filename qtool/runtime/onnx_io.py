"""Tables for the ONNX vision export: graph inputs/outputs, dynamic axes, file names, variants.

The graph computes ``image_embeds = merger(blocks(patch_embed(pixel_values)))`` for any number of
patches and images (Qwen3-VL also returns its DeepStack mergers' features, one per tapped block).
Everything that depends on the image grid (rotary angles, which image and which window each patch
belongs to, Qwen3-VL's interpolation of its learned position table) is computed outside the graph
and passed in, so no size is baked in.
All per-patch inputs are in the processor's patch order (merge-block major); attention is a
block-diagonal mask built in the graph from the id inputs.
"""

from __future__ import annotations

# graph input and output names
PIXEL_VALUES = "pixel_values"   # float32 [patches, channels * temporal_patch * patch * patch]
ROTARY_COS = "rotary_cos"       # float32 [patches, head_dim]
ROTARY_SIN = "rotary_sin"       # float32 [patches, head_dim]
SEGMENT_IDS = "segment_ids"     # int64 [patches]: which image (frame) a patch belongs to
WINDOW_IDS = "window_ids"       # int64 [patches]: which attention window (Qwen2.5-VL only)
POS_INDICES = "pos_indices"     # int64 [patches, 4]: bilinear taps into the learned position table (Qwen3-VL)
POS_WEIGHTS = "pos_weights"     # float32 [patches, 4]: their weights
IMAGE_EMBEDS = "image_embeds"   # float32 [patches / merge_size**2, text hidden size]
DEEPSTACK_EMBEDS = "deepstack_embeds"   # float32 [DeepStack taps, tokens, text hidden size] (Qwen3-VL)

# dynamic axis names
PATCHES = "patches"
TOKENS = "tokens"

# model_type -> graph inputs, in positional order
INPUTS: dict[str, tuple[str, ...]] = {
    "qwen2_vl": (PIXEL_VALUES, ROTARY_COS, ROTARY_SIN, SEGMENT_IDS),
    "qwen2_5_vl": (PIXEL_VALUES, ROTARY_COS, ROTARY_SIN, SEGMENT_IDS, WINDOW_IDS),
    "qwen3_vl": (PIXEL_VALUES, ROTARY_COS, ROTARY_SIN, SEGMENT_IDS, POS_INDICES, POS_WEIGHTS),
}
# model_type -> graph outputs
OUTPUTS: dict[str, tuple[str, ...]] = {
    "qwen2_vl": (IMAGE_EMBEDS,),
    "qwen2_5_vl": (IMAGE_EMBEDS,),
    "qwen3_vl": (IMAGE_EMBEDS, DEEPSTACK_EMBEDS),
}

# input/output -> {axis: name}; every input's first axis is the patch count
DYNAMIC_AXES: dict[str, dict[int, str]] = {
    PIXEL_VALUES: {0: PATCHES},
    ROTARY_COS: {0: PATCHES},
    ROTARY_SIN: {0: PATCHES},
    SEGMENT_IDS: {0: PATCHES},
    WINDOW_IDS: {0: PATCHES},
    POS_INDICES: {0: PATCHES},
    POS_WEIGHTS: {0: PATCHES},
    IMAGE_EMBEDS: {0: TOKENS},
    DEEPSTACK_EMBEDS: {1: TOKENS},
}

# files written next to each other in the export folder
CONFIG_FILE = "vision.json"          # what qtool.runtime.vision needs (preprocessing, rotary, windows)
VALIDATION_FILE = "validation.json"  # ORT vs torch errors, written by every export
MANIFEST = "qtool.json"              # source hash, files with sizes and sha256, versions

# precision -> ONNX file name; fp32 is always exported, the others derive from it
PRECISIONS: dict[str, str] = {
    "fp32": "vision.onnx",
    "fp16": "vision.fp16.onnx",
    "int8": "vision.int8.onnx",
    "int4": "vision.int4.onnx",
}
DEFAULT_PRECISIONS: tuple[str, ...] = ("fp32",)

DEFAULT_OPSET = 18       # the dynamo exporter's own opset; ORT >= 1.14 runs it
MIN_OPSET, MAX_OPSET = 18, 23
EXTERNAL_DATA_BYTES = 1 << 30   # weights above this go to a .data file (protobuf caps files at 2 GiB)

# (rows, columns) in patches of the images traced by the exporter (two images: two segments); in
# patches because the patch size differs (14 pixels in Qwen2/2.5-VL: 168x252 and 84x112; 16 in Qwen3-VL)
EXPORT_GRIDS: tuple[tuple[int, int], ...] = ((12, 18), (6, 8))

# validation case -> image sizes (height, width) in pixels, none an EXPORT_GRIDS size; several
# images in one case go through the graph in one call. Sizes off the merge grid (or under the
# processor's minimum area) get resized.
VALIDATION_CASES: dict[str, tuple[tuple[int, int], ...]] = {
    "224x224": ((224, 224),),
    "140x420": ((140, 420),),           # wide: Qwen2.5-VL windows cut at the right edge
    "333x250": ((333, 250),),           # resized to 336x252
    "batch 196x308 + 84x140": ((196, 308), (84, 140)),
}

# fp32 ORT vs torch: the export fails above this relative L2 error
FP32_MAX_REL_L2 = 1e-4


def graph_bytes(file) -> int:
    """An ONNX graph's bytes on disk, its external-data file included."""
    from pathlib import Path

    file = Path(file)
    data = file.with_name(file.name + ".data")
    return file.stat().st_size + (data.stat().st_size if data.is_file() else 0)
