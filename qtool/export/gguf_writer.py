"""Write a float checkpoint as GGUF: the language model (``qwen2vl``) and the mmproj (``clip``).

Tensors are streamed one at a time from the safetensors files (a 72B model never sits in memory),
named through gguf's own tensor maps, and stored as llama.cpp's converter stores them: matrices in
the chosen float type, norms and biases in F32.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from gguf import (
    MODEL_ARCH,
    MODEL_ARCH_NAMES,
    GGMLQuantizationType,
    GGUFWriter,
    Keys,
    SpecialVocab,
    TokenType,
    get_tensor_name_map,
    quants,
)

from qtool.errors import QtoolError
from qtool.export.vision_tower import image_processor_settings
from qtool.models.checkpoint import CheckpointInfo
from qtool.runtime import gguf_tables as tables

T = GGMLQuantizationType


@dataclass(frozen=True)
class Planned:
    """One GGUF tensor: its name, its float32 values on demand, and the type it is stored in."""
    name: str
    load: Callable[[], torch.Tensor]
    shape: tuple[int, ...]
    qtype: T


class Weights:
    """Safetensors tensors by hub-layout name, opened lazily."""

    def __init__(self, files):
        from safetensors import safe_open

        self._handles = {f: safe_open(str(f), "pt") for f in files}
        self.where = {tables_name(k): (f, k) for f, h in self._handles.items() for k in h.keys()}

    def shape(self, name: str) -> tuple[int, ...]:
        file, key = self.where[name]
        return tuple(self._handles[file].get_slice(key).get_shape())

    def loader(self, name: str, part: Callable[[torch.Tensor], torch.Tensor] = lambda t: t):
        file, key = self.where[name]
        return lambda: part(self._handles[file].get_tensor(key)).float()


def tables_name(name: str) -> str:
    for old, new in tables.NAME_FIXES:
        if name.startswith(old):
            return new + name[len(old):]
    return name


def write_language_model(info: CheckpointInfo, file: Path, quant: str) -> None:
    """The decoder, embeddings and lm_head as one ``qwen2vl`` GGUF in a float type (f32/bf16/f16)."""
    text = info.config["text_config"]
    writer = GGUFWriter(str(file), info.adapter.gguf_arch)
    _text_metadata(writer, info, text, quant)
    _tokenizer(writer, info.path, text["vocab_size"])
    weights = Weights(info.weight_files)
    arch = next(a for a, name in MODEL_ARCH_NAMES.items() if name == info.adapter.gguf_arch)
    names = get_tensor_name_map(arch, text["num_hidden_layers"])
    plan = []
    for name in sorted(weights.where):
        if name.startswith("visual."):
            continue
        target = names.get_name(name, try_suffixes=(".weight", ".bias"))
        if target is None:
            raise QtoolError(f"{info.path} has a tensor llama.cpp has no place for: {name}",
                             "export a stock Qwen-VL checkpoint")
        shape = weights.shape(name)
        plan.append(Planned(target, weights.loader(name), shape, _float_type(shape, tables.FLOAT_QUANTS[quant])))
    _write(writer, plan)


def write_mmproj(info: CheckpointInfo, file: Path, quant: str) -> None:
    """The vision tower and patch merger as a ``clip`` GGUF that llama.cpp's mtmd loads."""
    vision = info.config["vision_config"]
    writer = GGUFWriter(str(file), "clip")
    _vision_metadata(writer, info, vision, quant)
    weights = Weights(info.weight_files)
    names = get_tensor_name_map(MODEL_ARCH.MMPROJ, vision["depth"])
    qtype = tables.MMPROJ_TYPES[quant]
    plan = []
    parts = _qwen3_vision_parts(vision) if info.adapter.deepstack else _vision_parts
    for name in sorted(n for n in weights.where if n.startswith("visual.")):
        for target_source, part, shape in parts(name, weights.shape(name)):
            target = (target_source if target_source.startswith(("v.", "mm."))
                      else names.get_name(target_source, try_suffixes=(".weight", ".bias")))
            if target is None:
                raise QtoolError(f"{info.path} has a vision tensor llama.cpp has no place for: {name}",
                                 "export a stock Qwen-VL checkpoint")
            float_only = any(k in target for k in tables.MMPROJ_FLOAT_ONLY)
            ttype = _float_type(shape, T.F16 if float_only and qtype != T.F32 else qtype)
            if any(k in target for k in tables.MMPROJ_F32_ONLY):
                ttype = T.F32
            if len(shape) >= 2 and ttype not in (T.F32, T.F16) and shape[-1] % 32:
                ttype = T.F16    # Q8_0 blocks are 32 wide
            plan.append(Planned(target, weights.loader(name, part), shape, ttype))
    _write(writer, plan)


def _vision_parts(name: str, shape: tuple[int, ...]) -> Iterator[tuple[str, Callable, tuple[int, ...]]]:
    """llama.cpp's layout: the Conv3d patch embedding as two Conv2d kernels, qkv as q, k and v."""
    if name.endswith("patch_embed.proj.weight"):
        if shape[2] != 2:
            raise QtoolError(f"temporal patch size {shape[2]} is not supported by llama.cpp",
                             "export a model with temporal_patch_size 2 (every released Qwen-VL)")
        two_d = (shape[0], shape[1], shape[3], shape[4])
        yield "v.patch_embd.weight", lambda t: t[:, :, 0], two_d
        yield "v.patch_embd.weight.1", lambda t: t[:, :, 1], two_d
    elif ".attn.qkv." in name:
        third = shape[0] // 3
        for i, part in enumerate("qkv"):
            yield (name.replace(".qkv.", f".{part}."), lambda t, i=i: t[i * third:(i + 1) * third],
                   (third, *shape[1:]))
    else:
        yield name, lambda t: t, shape


def _qwen3_vision_parts(vision: dict) -> Callable:
    """Qwen3-VL's tower as llama.cpp's converter lays it out: the patch embedding split as for Qwen2-VL (with its
    bias), qkv kept fused, the mergers under their own names; a DeepStack merger is named by the tower block it
    taps (llama.cpp finds them by block index)."""
    taps = vision["deepstack_visual_indexes"]

    def parts(name: str, shape: tuple[int, ...]) -> Iterator[tuple[str, Callable, tuple[int, ...]]]:
        if name.endswith("patch_embed.proj.weight"):
            yield from _vision_parts(name, shape)
            return
        for prefix, target in tables.QWEN3_VL_VISION_NAMES.items():
            if name.startswith(prefix + "."):
                yield target + name[len(prefix):], lambda t: t, shape
                return
        if name.startswith(tables.DEEPSTACK_PREFIX):
            index, module, suffix = name[len(tables.DEEPSTACK_PREFIX):].split(".", 2)
            yield f"v.deepstack.{taps[int(index)]}.{tables.DEEPSTACK_MODULES[module]}.{suffix}", lambda t: t, shape
            return
        yield name, lambda t: t, shape

    return parts


def _float_type(shape: tuple[int, ...], qtype: T) -> T:
    return qtype if len(shape) >= 2 else T.F32


def _text_metadata(writer: GGUFWriter, info: CheckpointInfo, text: dict, quant: str) -> None:
    rope = text.get("rope_parameters") or text.get("rope_scaling") or {}
    sections = list(rope.get("mrope_section") or [])
    if not sections:
        raise QtoolError(f"{info.path}/config.json has no mrope_section", "export a Qwen2-VL-family checkpoint")
    writer.add_name(info.path.name)
    writer.add_context_length(text["max_position_embeddings"])
    writer.add_embedding_length(text["hidden_size"])
    writer.add_block_count(text["num_hidden_layers"])
    writer.add_feed_forward_length(text["intermediate_size"])
    writer.add_head_count(text["num_attention_heads"])
    writer.add_head_count_kv(text["num_key_value_heads"])
    writer.add_rope_freq_base(float(rope.get("rope_theta", text.get("rope_theta", 1e6))))
    writer.add_layer_norm_rms_eps(text["rms_norm_eps"])
    writer.add_rope_dimension_sections(sections + [0] * (4 - len(sections)))
    if "head_dim" in text:   # Qwen3-VL states it (hidden / heads differs for the 4B and 32B)
        writer.add_key_length(text["head_dim"])
        writer.add_value_length(text["head_dim"])
    if info.adapter.deepstack:
        writer.add_num_deepstack_layers(len(info.config["vision_config"]["deepstack_visual_indexes"]))
    writer.add_file_type(tables.QUANTS[quant])


def _vision_metadata(writer: GGUFWriter, info: CheckpointInfo, vision: dict, quant: str) -> None:
    text = info.config["text_config"]
    windowed, qwen3 = info.adapter.windowed_vision, info.adapter.deepstack
    embed = vision["hidden_size"] if windowed or qwen3 else vision["embed_dim"]
    ffn = vision["intermediate_size"] if windowed or qwen3 else vision["embed_dim"] * vision["mlp_ratio"]
    # Qwen3-VL: the learned position table's side in patches, as llama.cpp's converter derives the image size
    size = (int(vision["num_position_embeddings"] ** 0.5) * vision["patch_size"] if qwen3
            else vision.get("image_size", tables.DEFAULT_IMAGE_SIZE))
    image = image_processor_settings(info.path)
    writer.add_name(info.path.name)
    writer.add_file_type(tables.QUANTS[quant])
    writer.add_bool(Keys.Clip.HAS_VISION_ENCODER, True)
    writer.add_string(Keys.Clip.PROJECTOR_TYPE, info.adapter.gguf_projector)
    writer.add_uint32(Keys.ClipVision.IMAGE_SIZE, size)
    writer.add_uint32(Keys.ClipVision.PATCH_SIZE, vision["patch_size"])
    writer.add_uint32(Keys.ClipVision.EMBEDDING_LENGTH, embed)
    writer.add_uint32(Keys.ClipVision.FEED_FORWARD_LENGTH, ffn)
    writer.add_uint32(Keys.ClipVision.BLOCK_COUNT, vision["depth"])
    writer.add_uint32(Keys.ClipVision.PROJECTION_DIM, text["hidden_size"])
    writer.add_uint32(Keys.ClipVision.Attention.HEAD_COUNT, vision["num_heads"])
    writer.add_float32(Keys.ClipVision.Attention.LAYERNORM_EPS, 1e-6)   # hard-coded in transformers' tower
    writer.add_uint32(Keys.ClipVision.SPATIAL_MERGE_SIZE, vision["spatial_merge_size"])
    writer.add_array(Keys.ClipVision.IMAGE_MEAN, [float(v) for v in image["image_mean"]])
    writer.add_array(Keys.ClipVision.IMAGE_STD, [float(v) for v in image["image_std"]])
    if windowed:
        writer.add_bool(Keys.ClipVision.USE_SILU, True)
        writer.add_uint32(Keys.ClipVision.N_WA_PATTERN, _window_pattern(vision["fullatt_block_indexes"]))
    elif qwen3:
        writer.add_bool(Keys.ClipVision.USE_GELU, True)
        taps = set(vision["deepstack_visual_indexes"])
        writer.add_vision_is_deepstack_layers([i in taps for i in range(vision["depth"])])
    elif vision.get("hidden_act", "quick_gelu") != "quick_gelu":
        raise QtoolError(f"vision activation {vision['hidden_act']} is not Qwen2-VL's quick_gelu",
                         "export a stock Qwen2-VL checkpoint")


def _window_pattern(full_blocks: list[int]) -> int:
    """llama.cpp describes Qwen2.5-VL's full-attention blocks as "every n-th": check they are."""
    n = full_blocks[0] + 1
    if any(b - a != n for a, b in zip(full_blocks, full_blocks[1:])):
        raise QtoolError(f"full-attention blocks {full_blocks} are not evenly spaced",
                         "llama.cpp supports only evenly spaced full-attention blocks")
    return n


def _tokenizer(writer: GGUFWriter, path: Path, vocab_size: int) -> None:
    """Byte-level BPE tokens padded to the embedding's rows, merges, special ids and chat template."""
    spec = json.loads((path / "tokenizer.json").read_text())
    if spec["model"]["type"] != "BPE":
        raise QtoolError(f"{path}/tokenizer.json is {spec['model']['type']}, not BPE",
                         "export a Qwen tokenizer (byte-level BPE)")
    tokens = {i: (t, TokenType.NORMAL) for t, i in spec["model"]["vocab"].items()}
    for added in spec.get("added_tokens", []):
        tokens[added["id"]] = (added["content"], TokenType.CONTROL if added["special"] else TokenType.USER_DEFINED)
    if max(tokens) >= vocab_size:
        raise QtoolError(f"the tokenizer has ids up to {max(tokens)} but the model only {vocab_size} rows",
                         "export the tokenizer the model was trained with")
    filled = [tokens.get(i, (f"[PAD{i}]", TokenType.UNUSED)) for i in range(vocab_size)]
    writer.add_tokenizer_model(tables.TOKENIZER_MODEL)
    writer.add_tokenizer_pre(tables.PRE_TOKENIZER)
    writer.add_token_list([t for t, _ in filled])
    writer.add_token_types([int(k) for _, k in filled])
    special = SpecialVocab(path, load_merges=True, n_vocab=vocab_size)
    special.add_to_gguf(writer, quiet=True)
    writer.add_add_bos_token(False)    # Qwen prompts start with <|im_start|>, never a BOS


def _write(writer: GGUFWriter, plan: list[Planned]) -> None:
    for t in plan:
        shape, dtype, nbytes, raw = _info(t.shape, t.qtype)
        writer.add_tensor_info(t.name, shape, dtype, nbytes, raw_dtype=raw)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for t in plan:
        values = t.load().contiguous().numpy()
        if tuple(values.shape) != t.shape:
            raise QtoolError(f"tensor {t.name} has shape {values.shape}, expected {t.shape}",
                             "the checkpoint disagrees with its config.json: re-export it")
        writer.write_tensor_data(_encode(values, t.qtype))
    writer.close()


def _info(shape: tuple[int, ...], qtype: T):
    if qtype == T.F32:
        return shape, np.dtype(np.float32), 4 * int(np.prod(shape)), None
    if qtype == T.F16:
        return shape, np.dtype(np.float16), 2 * int(np.prod(shape)), None
    byte_shape = quants.quant_shape_to_byte_shape(shape, qtype)
    return byte_shape, np.dtype(np.uint8), int(np.prod(byte_shape)), qtype


def _encode(values: np.ndarray, qtype: T) -> np.ndarray:
    if qtype == T.F32:
        return values.astype(np.float32, copy=False)
    if qtype == T.F16:
        return values.astype(np.float16)
    return quants.quantize(values, qtype)
