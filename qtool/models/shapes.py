"""The real models' published architecture configs, as a table.

Qwen2-VL and QVQ rows: /work/shared/reference/qwen-published.md (public config.json values).
Qwen2.5-VL rows: the config.json of Qwen/Qwen2.5-VL-3B-Instruct and Qwen/Qwen2.5-VL-7B-Instruct on
the Hugging Face hub, checked against public copies (a verbatim 3B config.json dump, TensorRT-LLM's
Qwen2.5-VL-7B test config, and acproject/duorou docs/qwen2.5vl_graph.md for the 7B module shapes).
Hub configs spell rope as ``rope_scaling: {type: mrope, mrope_section}``; transformers 5 maps that
to ``rope_parameters: {rope_type: default, rope_theta, mrope_section}``, which is what we store.
Qwen3-VL rows: the config.json of Qwen/Qwen3-VL-{2B,4B,8B,32B}-Instruct, read from public copies (vendored
config dumps and test fixtures that mirror the hub files; at least two agree on every 2B/4B/8B value, two on
32B) and checked against transformers 5.23's Qwen3VLConfig fields. Its class defaults match no released model.

Shapes with ``listed=False`` are small stand-ins for tests; they keep the real layer structure
(head_dim 128, their M-RoPE sections) with small widths and a vocabulary that fits the tiny tokenizer.
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

# Qwen's token ids, as in the hub configs; build_random replaces them with its tokenizer's ids.
QWEN_TOKEN_IDS = dict(
    bos_token_id=151643, eos_token_id=151645, image_token_id=151655, video_token_id=151656,
    vision_start_token_id=151652, vision_end_token_id=151653,
)

# Text fields every row of an architecture shares. Qwen3-VL: explicit head_dim (4B and 32B have
# hidden / heads = 80, not 128), interleaved M-RoPE over [24, 20, 20] frequency pairs, rope theta 5e6.
TEXT = {
    "qwen2_vl": dict(use_sliding_window=False, rope_parameters={
        "rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]}),
    "qwen3_vl": dict(head_dim=128, attention_bias=False, rope_parameters={
        "rope_type": "default", "rope_theta": 5000000.0, "mrope_section": [24, 20, 20], "mrope_interleaved": True}),
}
TEXT["qwen2_5_vl"] = TEXT["qwen2_vl"]

# preprocessor_config.json: the image processor's pixel limits (Qwen2/2.5-VL: min_pixels/max_pixels;
# Qwen3-VL: size.shortest_edge/longest_edge), patch size and normalisation.
CLIP_MEAN, CLIP_STD = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]
IMAGE = {
    "qwen2_vl": dict(min_pixels=3136, max_pixels=12845056, patch_size=14, image_mean=CLIP_MEAN, image_std=CLIP_STD),
    "qwen3_vl": dict(min_pixels=65536, max_pixels=16777216, patch_size=16, image_mean=[0.5] * 3, image_std=[0.5] * 3),
}
IMAGE["qwen2_5_vl"] = IMAGE["qwen2_vl"]

_QWEN3_VL_VISION = dict(  # out_hidden_size (merger output) is set to the text hidden size
    hidden_act="gelu_pytorch_tanh", num_heads=16, in_channels=3, patch_size=16, spatial_merge_size=2,
    temporal_patch_size=2, num_position_embeddings=2304,
)
VISION = {  # towers by name; the merger's output width is set to the text hidden size
    "qwen2-vl": dict(depth=32, embed_dim=1280, mlp_ratio=4, num_heads=16, hidden_act="quick_gelu",
                     in_channels=3, patch_size=14, spatial_merge_size=2, temporal_patch_size=2),
    "qwen2.5-vl": dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, hidden_act="silu",
                       in_channels=3, patch_size=14, spatial_merge_size=2, temporal_patch_size=2,
                       window_size=112, fullatt_block_indexes=[7, 15, 23, 31], tokens_per_second=2),
    # Qwen3-VL 2B/4B and 8B/32B: two towers, DeepStack taps at a quarter, half and three quarters of the depth
    "qwen3-vl-24": dict(_QWEN3_VL_VISION, depth=24, hidden_size=1024, intermediate_size=4096,
                        deepstack_visual_indexes=[5, 11, 17]),
    "qwen3-vl-27": dict(_QWEN3_VL_VISION, depth=27, hidden_size=1152, intermediate_size=4304,
                        deepstack_visual_indexes=[8, 16, 24]),
}
VISION["qwen2-vl-test"] = dict(VISION["qwen2-vl"], depth=2, embed_dim=128, num_heads=2)
VISION["qwen2.5-vl-test"] = dict(VISION["qwen2.5-vl"], depth=4, hidden_size=128, intermediate_size=256,
                                 num_heads=2, fullatt_block_indexes=[1, 3])
VISION["qwen3-vl-test"] = dict(VISION["qwen3-vl-24"], depth=3, hidden_size=128, intermediate_size=256, num_heads=2,
                               deepstack_visual_indexes=[0, 2])
VISION_OUT = {"qwen2_vl": "hidden_size", "qwen2_5_vl": "out_hidden_size", "qwen3_vl": "out_hidden_size"}

# name, HF repo mirrored, model_type, vision tower, hidden, intermediate, layers, heads, kv heads, vocab, tied,
# max_position_embeddings, max_window_layers (Qwen2/2.5-VL only). Rows without a repo are the hidden test shapes.
ROWS = (
    ("qwen2-vl-2b", "Qwen/Qwen2-VL-2B-Instruct", "qwen2_vl", "qwen2-vl", 1536, 8960, 28, 12, 2, 151936, True,
     32768, 28),
    ("qwen2-vl-7b", "Qwen/Qwen2-VL-7B-Instruct", "qwen2_vl", "qwen2-vl", 3584, 18944, 28, 28, 4, 152064, False,
     32768, 28),
    ("qwen2-vl-72b", "Qwen/Qwen2-VL-72B-Instruct", "qwen2_vl", "qwen2-vl", 8192, 29568, 80, 64, 8, 152064, False,
     32768, 80),
    ("qvq-72b-preview", "Qwen/QVQ-72B-Preview", "qwen2_vl", "qwen2-vl", 8192, 29568, 80, 64, 8, 152064, False,
     32768, 80),
    ("qwen2.5-vl-3b", "Qwen/Qwen2.5-VL-3B-Instruct", "qwen2_5_vl", "qwen2.5-vl", 2048, 11008, 36, 16, 2, 151936, True,
     128000, 70),
    ("qwen2.5-vl-7b", "Qwen/Qwen2.5-VL-7B-Instruct", "qwen2_5_vl", "qwen2.5-vl", 3584, 18944, 28, 28, 4, 152064, False,
     128000, 28),
    ("qwen3-vl-2b", "Qwen/Qwen3-VL-2B-Instruct", "qwen3_vl", "qwen3-vl-24", 2048, 6144, 28, 16, 8, 151936, True,
     262144, None),
    ("qwen3-vl-4b", "Qwen/Qwen3-VL-4B-Instruct", "qwen3_vl", "qwen3-vl-24", 2560, 9728, 36, 32, 8, 151936, True,
     262144, None),
    ("qwen3-vl-8b", "Qwen/Qwen3-VL-8B-Instruct", "qwen3_vl", "qwen3-vl-27", 4096, 12288, 36, 32, 8, 151936, False,
     262144, None),
    ("qwen3-vl-32b", "Qwen/Qwen3-VL-32B-Instruct", "qwen3_vl", "qwen3-vl-27", 5120, 25600, 64, 64, 8, 151936, False,
     262144, None),
    ("qwen2-vl-test", "", "qwen2_vl", "qwen2-vl-test", 256, 512, 2, 2, 1, 512, False, 4096, 2),
    ("qwen2.5-vl-test", "", "qwen2_5_vl", "qwen2.5-vl-test", 256, 512, 2, 2, 1, 512, True, 4096, 2),
    # intermediate 640: group size 256 does not divide down_proj's in-features (bad-input tests)
    ("qwen2-vl-test-odd", "", "qwen2_vl", "qwen2-vl-test", 256, 640, 2, 2, 1, 512, False, 4096, 2),
    # 3 heads of 128 over hidden 256: hidden / heads != head_dim, as in the real 4B and 32B; 3 layers, so that
    # a DeepStack layer (0, 1) is not the last one
    ("qwen3-vl-test", "", "qwen3_vl", "qwen3-vl-test", 256, 512, 3, 3, 1, 512, True, 4096, None),
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


def _shape(name, repo, model_type, tower, hidden, inter, layers, heads, kv, vocab, tied, max_pos, window) -> Shape:
    text = dict(
        hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=kv, vocab_size=vocab,
        max_position_embeddings=max_pos, rms_norm_eps=1e-6, hidden_act="silu", **copy.deepcopy(TEXT[model_type]),
    )
    if window is not None:
        text["max_window_layers"] = window
    vision = dict(VISION[tower])
    vision[VISION_OUT[model_type]] = hidden
    return Shape(name, repo, model_type, text, vision, tied, listed=bool(repo))


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
