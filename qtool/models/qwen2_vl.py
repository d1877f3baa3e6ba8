"""Qwen2-VL (2B/7B/72B) and QVQ-72B-Preview, which shares its architecture."""

from qtool.calibration.chat import qwen_chat
from qtool.models.adapter import ArchAdapter

QWEN2_VL = ArchAdapter(
    model_type="qwen2_vl",
    hf_class="Qwen2VLForConditionalGeneration",
    processor_class="Qwen2VLProcessor",
    decoder_path="model.language_model.layers",
    decoder_layer_class="Qwen2VLDecoderLayer",
    quant_groups=(
        ("self_attn.k_proj", "self_attn.v_proj", "self_attn.q_proj"),
        ("self_attn.o_proj",),
        ("mlp.up_proj", "mlp.gate_proj"),
        ("mlp.down_proj",),
    ),
    keep_fp=("model.visual", "model.language_model.embed_tokens", "lm_head"),
    vision_path="model.visual",
    vision_blocks_path="model.visual.blocks",
    vision_linears=("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2"),
    gguf_arch="qwen2vl",
    gguf_projector="qwen2vl_merger",
    to_messages=qwen_chat,
)
