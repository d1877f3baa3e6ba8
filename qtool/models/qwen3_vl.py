"""Qwen3-VL (2B/4B/8B/32B dense): Qwen3's decoder (q/k RMSNorm, interleaved M-RoPE) behind a tower with
learned position embeddings and DeepStack mergers, whose features are added into the first decoder layers.
The mergers live under ``model.visual`` (``deepstack_merger_list``), so the tower's float prefix covers them."""

from dataclasses import replace

from qtool.models.qwen2_vl import QWEN2_VL

QWEN3_VL = replace(
    QWEN2_VL,
    model_type="qwen3_vl",
    hf_class="Qwen3VLForConditionalGeneration",
    processor_class="Qwen3VLProcessor",
    gguf_arch="qwen3vl",
    gguf_projector="qwen3vl_merger",
    deepstack=True,
    # GPTQModel 7.7 lists q_norm/k_norm after o_proj, so AWQ takes k_norm (head_dim wide) as o_proj's
    # previous op and fails scaling it by o_proj's heads * head_dim inputs. In forward order, as its Qwen3
    # definition has them, v_proj precedes o_proj and AWQ skips that pair as it does for every GQA model.
    engine_module_tree=["model", "language_model", "layers", "#", {
        "input_layernorm": ("input_layernorm:!",),
        "self_attn": ("q_norm:!", "k_norm:!", "q_proj:0", "k_proj:0", "v_proj:0", "o_proj:1"),
        "post_attention_layernorm": ("post_attention_layernorm:!",),
        "mlp": ("gate_proj:0", "up_proj:0", "down_proj:1"),
    }],
)
