"""The real models' published architecture configs, as a table.

Qwen2-VL and QVQ rows: /work/shared/reference/qwen-published.md (public config.json values).
Qwen2.5-VL rows: the config.json of Qwen/Qwen2.5-VL-3B-Instruct and Qwen/Qwen2.5-VL-7B-Instruct on
the Hugging Face hub, checked against public copies (a verbatim 3B config.json dump, TensorRT-LLM's
Qwen2.5-VL-7B test config, and acproject/duorou docs/qwen2.5vl_graph.md for the 7B module shapes).
Hub configs spell rope as ``rope_scaling: {type: mrope, mrope_section}``; transformers 5 maps that
to ``rope_parameters: {rope_type: default, rope_theta, mrope_section}``, which is what we store.

Shapes with ``listed=False`` are small stand-ins for tests; they keep the real layer structure
(head_dim 128, mrope [16, 24, 24]) with small widths and a vocabulary that fits the tiny tokenizer.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from qtool.errors import QtoolError
from qtool.models import ADAPTERS

if TYPE_CHECKING:  # torch and transformers load lazily: looking up a name stays instant
    import torch
    import transformers

ROPE = {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]}
# Qwen's token ids, as in the hub configs; build_random replaces them with its tokenizer's ids.
QWEN_TOKEN_IDS = dict(
    bos_token_id=151643, eos_token_id=151645, image_token_id=151655, video_token_id=151656,
    vision_start_token_id=151652, vision_end_token_id=151653,
)
# preprocessor_config.json of all Qwen2-VL / Qwen2.5-VL releases: min_pixels, max_pixels.
IMAGE_PIXELS = (3136, 12845056)

QWEN2_VL_VISION = dict(  # hidden_size (merger output) is set to the text hidden size
    depth=32, embed_dim=1280, mlp_ratio=4, num_heads=16, hidden_act="quick_gelu",
    in_channels=3, patch_size=14, spatial_merge_size=2, temporal_patch_size=2,
)
QWEN2_5_VL_VISION = dict(  # out_hidden_size (merger output) is set to the text hidden size
    depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, hidden_act="silu",
    in_channels=3, patch_size=14, spatial_merge_size=2, temporal_patch_size=2,
    window_size=112, fullatt_block_indexes=[7, 15, 23, 31], tokens_per_second=2,
)
TEST_VISION = {  # small towers for the hidden test shapes
    "qwen2_vl": dict(QWEN2_VL_VISION, depth=2, embed_dim=128, num_heads=2),
    "qwen2_5_vl": dict(QWEN2_5_VL_VISION, depth=4, hidden_size=128, intermediate_size=256,
                       num_heads=2, fullatt_block_indexes=[1, 3]),
}
VISION = {"qwen2_vl": QWEN2_VL_VISION, "qwen2_5_vl": QWEN2_5_VL_VISION}
VISION_OUT = {"qwen2_vl": "hidden_size", "qwen2_5_vl": "out_hidden_size"}

# name, HF repo mirrored, model_type, hidden, intermediate, layers, heads, kv heads, vocab, tied,
# max_position_embeddings, max_window_layers. Rows without a repo are the hidden test shapes.
ROWS = (
    ("qwen2-vl-2b", "Qwen/Qwen2-VL-2B-Instruct", "qwen2_vl", 1536, 8960, 28, 12, 2, 151936, True, 32768, 28),
    ("qwen2-vl-7b", "Qwen/Qwen2-VL-7B-Instruct", "qwen2_vl", 3584, 18944, 28, 28, 4, 152064, False, 32768, 28),
    ("qwen2-vl-72b", "Qwen/Qwen2-VL-72B-Instruct", "qwen2_vl", 8192, 29568, 80, 64, 8, 152064, False, 32768, 80),
    ("qvq-72b-preview", "Qwen/QVQ-72B-Preview", "qwen2_vl", 8192, 29568, 80, 64, 8, 152064, False, 32768, 80),
    ("qwen2.5-vl-3b", "Qwen/Qwen2.5-VL-3B-Instruct", "qwen2_5_vl", 2048, 11008, 36, 16, 2, 151936, True, 128000, 70),
    ("qwen2.5-vl-7b", "Qwen/Qwen2.5-VL-7B-Instruct", "qwen2_5_vl", 3584, 18944, 28, 28, 4, 152064, False, 128000, 28),
    ("qwen2-vl-test", "", "qwen2_vl", 256, 512, 2, 2, 1, 512, False, 4096, 2),
    ("qwen2.5-vl-test", "", "qwen2_5_vl", 256, 512, 2, 2, 1, 512, True, 4096, 2),
    # intermediate 640: group size 256 does not divide down_proj's in-features (bad-input tests)
    ("qwen2-vl-test-odd", "", "qwen2_vl", 256, 640, 2, 2, 1, 512, False, 4096, 2),
)


@dataclass(frozen=True)
class Shape:
    name: str
    repo_id: str                     # the hub repo whose config.json this mirrors ("" for test shapes)
    model_type: str
    text: dict = field(repr=False)
    vision: dict = field(repr=False)
    tie_word_embeddings: bool = False
    listed: bool = True              # False: small test stand-in, not shown by `qtool models`


def _shape(name, repo, model_type, hidden, inter, layers, heads, kv, vocab, tied, max_pos, window) -> Shape:
    listed = bool(repo)
    text = dict(
        hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=kv, vocab_size=vocab,
        max_position_embeddings=max_pos, max_window_layers=window, use_sliding_window=False,
        rms_norm_eps=1e-6, hidden_act="silu", rope_parameters=ROPE,
    )
    vision = dict(VISION[model_type] if listed else TEST_VISION[model_type])
    vision[VISION_OUT[model_type]] = hidden
    return Shape(name, repo, model_type, text, vision, tied, listed)


SHAPES: dict[str, Shape] = {row[0]: _shape(*row) for row in ROWS}


def get_shape(name: str) -> Shape:
    if name not in SHAPES:
        known = ", ".join(n for n, s in SHAPES.items() if s.listed)
        raise QtoolError(f"unknown model shape '{name}'", f"known shapes: {known}")
    return SHAPES[name]


def config_for(name: str, **overrides) -> transformers.PretrainedConfig:
    """The transformers config of shape ``name``; ``overrides`` set top-level fields (token ids)."""
    import transformers

    shape = get_shape(name)
    cls = getattr(transformers, ADAPTERS[shape.model_type].hf_class).config_class
    text = copy.deepcopy(shape.text)
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        text[key] = overrides.pop(key, QWEN_TOKEN_IDS.get(key))
    ids = {k: v for k, v in QWEN_TOKEN_IDS.items() if k not in text}
    return cls(
        text_config=text, vision_config=copy.deepcopy(shape.vision),
        tie_word_embeddings=shape.tie_word_embeddings,
        architectures=[ADAPTERS[shape.model_type].hf_class], **{**ids, **overrides},
    )


def meta_model(config) -> torch.nn.Module:
    """The model for ``config`` on the meta device: names and shapes, no memory."""
    import torch
    import transformers

    cls = getattr(transformers, ADAPTERS[config.model_type].hf_class)
    with torch.device("meta"):
        return cls(config)


def param_count(config) -> dict[str, int]:
    """Exact parameter counts (tied weights once): total, text (incl. lm_head), vision (incl. merger)."""
    vision_prefix = ADAPTERS[config.model_type].vision_path + "."
    counts = {"total": 0, "text": 0, "vision": 0}
    for name, p in meta_model(config).named_parameters():
        counts["total"] += p.numel()
        counts["vision" if name.startswith(vision_prefix) else "text"] += p.numel()
    return counts


def checkpoint_tensors(config) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape, as ``save_pretrained`` writes them (hub names, tied lm_head left out)."""
    from transformers.core_model_loading import revert_weight_conversion

    model = meta_model(config)
    saved = revert_weight_conversion(model, model.state_dict())
    if config.tie_word_embeddings:
        saved.pop("lm_head.weight", None)
    return {name: tuple(t.shape) for name, t in saved.items()}


def model_tensors(config) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape under transformers 5's own module names (also accepted on load)."""
    return {name: tuple(t.shape) for name, t in meta_model(config).state_dict().items()}
