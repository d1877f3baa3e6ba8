"""The stock transformers vision tower: loaded alone, and its grid-dependent inputs.

:func:`load_vision_tower` reads only the ``visual.*`` tensors of a checkpoint (a 72B model's tower
loads without its language model). :func:`reference_inputs` computes the ONNX graph's auxiliary
inputs with transformers' own helpers; the runtime recomputes them in numpy and the tests compare.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from qtool.errors import QtoolError
from qtool.runtime import onnx_io as io

VISUAL_PREFIXES = ("model.visual.", "visual.")   # transformers 5 layout, hub layout


def reference_inputs(visual: nn.Module, grid_thw: torch.Tensor, model_type: str) -> dict[str, torch.Tensor]:
    """The graph's auxiliary inputs for ``grid_thw``, computed by transformers' own helpers."""
    from transformers.vision_utils import (
        get_vision_cu_seqlens,
        get_vision_interpolation_indices_and_weights,
        get_vision_position_ids,
        get_vision_window_index,
    )

    merge = visual.spatial_merge_size
    positions = get_vision_position_ids(grid_thw, merge)
    cos, sin = visual.rotary_pos_emb(positions, positions)
    n = positions.shape[0]
    steps = torch.arange(n)
    cu = get_vision_cu_seqlens(grid_thw)
    out = {io.ROTARY_COS: cos.float(), io.ROTARY_SIN: sin.float(),
           io.SEGMENT_IDS: torch.searchsorted(cu[1:].long(), steps, right=True)}
    if io.WINDOW_IDS in io.INPUTS[model_type]:
        index, cu_windows = get_vision_window_index(grid_thw, merge, visual.window_size, visual.patch_size)
        unit = merge * merge
        window_of_slot = torch.searchsorted(cu_windows[1:].long(), steps, right=True)
        source = (index[:, None] * unit + torch.arange(unit)).reshape(-1)   # slot -> patch
        ids = torch.empty(n, dtype=torch.long)
        ids[source] = window_of_slot
        out[io.WINDOW_IDS] = ids
    if io.POS_INDICES in io.INPUTS[model_type]:
        indices, weights = get_vision_interpolation_indices_and_weights(
            grid_thw, visual.num_grid_per_side, mode=visual.interpolation_mode,
            align_corners=visual.interpolation_align_corners, spatial_merge_size=merge)
        out[io.POS_INDICES], out[io.POS_WEIGHTS] = indices, weights.float()
    return out


def load_vision_tower(path: Path, config, files: Sequence[Path] | None = None) -> nn.Module:
    """The stock vision tower in float32, reading only its tensors from the checkpoint's ``files``."""
    from safetensors import safe_open

    vision_cls = _vision_class(config.model_type)
    vision_config = config.vision_config
    vision_config._attn_implementation = "sdpa"
    with torch.device("meta"):
        visual = vision_cls._from_config(vision_config, dtype=torch.float32)
    state = {}
    for file in files or sorted(Path(path).glob("*.safetensors")):
        with safe_open(file, "pt") as fh:
            for name in fh.keys():
                prefix = next((p for p in VISUAL_PREFIXES if name.startswith(p)), None)
                if prefix:
                    state[name[len(prefix):]] = fh.get_tensor(name).float()
    missing = sorted(set(visual.state_dict()) - set(state))
    if missing:
        raise QtoolError(f"checkpoint {path} lacks vision tensor {missing[0]} ({len(missing)} missing)",
                         "re-download or re-export the checkpoint")
    visual.load_state_dict(state, strict=False, assign=True)
    _rebuild_buffers(visual)
    return visual.eval()


def _vision_class(model_type: str):
    if model_type == "qwen3_vl":
        from transformers.models.qwen3_vl.modeling_qwen3_vl import Qwen3VLVisionModel
        return Qwen3VLVisionModel
    if model_type == "qwen2_5_vl":
        from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import (
            Qwen2_5_VisionTransformerPretrainedModel,
        )
        return Qwen2_5_VisionTransformerPretrainedModel
    from transformers.models.qwen2_vl.modeling_qwen2_vl import (
        Qwen2VisionTransformerPretrainedModel,
    )
    return Qwen2VisionTransformerPretrainedModel


def _rebuild_buffers(visual: nn.Module) -> None:
    """Non-persistent buffers (rotary inverse frequencies) stay on meta after a meta build."""
    rotary = visual.rotary_pos_emb
    inv_freq, _ = rotary.compute_axial_rope_parameters(rotary.config)
    rotary.inv_freq = inv_freq.float()
    rotary.original_inv_freq = inv_freq.float().clone()


def image_processor_settings(path: Path) -> dict:
    """The image processor's effective settings (transformers reads every config layout)."""
    from transformers import AutoImageProcessor

    try:
        return AutoImageProcessor.from_pretrained(path).to_dict()
    except (OSError, ValueError) as exc:
        raise QtoolError(f"no usable image processor config in {path} ({str(exc).splitlines()[0]})",
                         "copy preprocessor_config.json from the model's release into the folder") from None
