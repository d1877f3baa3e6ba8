"""Qwen2.5-VL: Qwen2-VL's decoder with a windowed, SwiGLU vision tower."""

from dataclasses import replace

from qtool.models.qwen2_vl import QWEN2_VL

QWEN2_5_VL = replace(
    QWEN2_VL,
    model_type="qwen2_5_vl",
    hf_class="Qwen2_5_VLForConditionalGeneration",
    processor_class="Qwen2_5_VLProcessor",
    gguf_projector="qwen2.5vl_merger",
    windowed_vision=True,
)
