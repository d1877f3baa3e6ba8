"""Qwen2-VL (2B/7B/72B) and QVQ-72B-Preview, which shares its architecture."""

from qtool.models.adapter import ArchAdapter
from qtool.models.chat import qwen_chat

QWEN2_VL = ArchAdapter(
    model_type="qwen2_vl",
    hf_class="Qwen2VLForConditionalGeneration",
    processor_class="Qwen2VLProcessor",
    quantized_linears=("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                       "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"),
    vision_path="model.visual",
    gguf_arch="qwen2vl",
    gguf_projector="qwen2vl_merger",
    to_messages=qwen_chat,
)
