"""Tables for the GGUF export: quant names, file names, tokenizer settings, checkpoint name fixes.

A GGUF export is two kinds of file: the language model (arch ``qwen2vl``, one file per quant) and
the vision tower + merger as an ``mmproj`` file (arch ``clip``) that llama.cpp's mtmd loads beside it.
"""

from __future__ import annotations

from gguf import GGMLQuantizationType as T
from gguf import LlamaFileType as F

# --quant name -> llama.cpp file type. The float types are written directly by the writer; the others
# are made from the float file by llama.cpp's own quantizer (llama_model_quantize).
QUANTS: dict[str, F] = {
    "f32": F.ALL_F32,
    "bf16": F.MOSTLY_BF16,
    "f16": F.MOSTLY_F16,
    "q8_0": F.MOSTLY_Q8_0,
    "q5_k_m": F.MOSTLY_Q5_K_M,
    "q4_k_m": F.MOSTLY_Q4_K_M,
    "q4_0": F.MOSTLY_Q4_0,
}
FLOAT_QUANTS: dict[str, T] = {"f32": T.F32, "bf16": T.BF16, "f16": T.F16}
DEFAULT_QUANTS: tuple[str, ...] = ("f16", "q8_0", "q4_k_m")

# --mmproj name -> type of the projector's matrices (norms, biases and conv kernels stay float)
MMPROJ_TYPES: dict[str, T] = {"f32": T.F32, "f16": T.F16, "q8_0": T.Q8_0}
DEFAULT_MMPROJ = "f16"

# file names inside the export folder
TEXT_FILE = "{name}-{quant}.gguf"
MMPROJ_FILE = "mmproj-{name}-{quant}.gguf"
MANIFEST = "qtool.json"

# Qwen2's byte-level BPE; llama.cpp's "qwen2" pre-tokenizer is the Qwen2 split regex (digits one by
# one), which the tokenizer-parity check at export proves against the model's own tokenizer.
TOKENIZER_MODEL = "gpt2"
PRE_TOKENIZER = "qwen2"

# Checkpoints come in two layouts: the hub's (``model.layers``, ``visual``) and the one transformers 5
# and GPTQModel write (``model.language_model.layers``, ``model.visual``). gguf's name maps know the
# hub layout, so names are brought to it first.
NAME_FIXES: tuple[tuple[str, str], ...] = (
    ("model.language_model.", "model."),
    ("model.visual.", "visual."),
)

# mmproj tensors that llama.cpp reads as float whatever the projector type; of them, those kept in F32
MMPROJ_FLOAT_ONLY = (".patch_embd.", "norm", "ln", ".bias")
MMPROJ_F32_ONLY = ("position_embd",)

# Qwen3-VL's tower tensors that gguf's name map does not know (hub layout -> llama.cpp), as its converter names them
QWEN3_VL_VISION_NAMES = {
    "visual.patch_embed.proj": "v.patch_embd",      # the bias; the Conv3d weight is split like Qwen2-VL's
    "visual.pos_embed": "v.position_embd",
    "visual.merger.norm": "v.post_ln",
    "visual.merger.linear_fc1": "mm.0",
    "visual.merger.linear_fc2": "mm.2",
}
DEEPSTACK_PREFIX = "visual.deepstack_merger_list."
DEEPSTACK_MODULES = {"norm": "norm", "linear_fc1": "fc1", "linear_fc2": "fc2"}

# vision models whose converter needs the image size but whose config has none (llama.cpp's default)
DEFAULT_IMAGE_SIZE = 560
