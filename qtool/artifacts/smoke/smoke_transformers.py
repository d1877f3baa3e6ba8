"""Smoke-load one artifact with stock transformers and run one image forward (no qtool import).

    python smoke_transformers.py MODEL_DIR [BACKEND]  -> prints a JSON line

BACKEND: the GPTQModel kernel to load a GPTQ/AWQ checkpoint with (the documented load argument).
"""

import json
import sys

import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor, AwqConfig, GPTQConfig

path = sys.argv[1]
kwargs = {}
if len(sys.argv) > 2 and sys.argv[2]:
    qc = json.loads(open(f"{path}/config.json").read())["quantization_config"]
    config = AwqConfig if qc["quant_method"] == "awq" else GPTQConfig
    kwargs["quantization_config"] = config(bits=qc["bits"], backend=sys.argv[2])
model = AutoModelForImageTextToText.from_pretrained(path, **kwargs)
processor = AutoProcessor.from_pretrained(path)
messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe the image."}]}]
text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
enc = processor(text=[text], images=[Image.new("RGB", (112, 112), (220, 40, 40))], return_tensors="pt")
with torch.inference_mode():
    out = model.generate(**enc, max_new_tokens=4, do_sample=False)
finite = bool(torch.isfinite(model(**enc).logits).all())
kernel = type(model.model.language_model.layers[0].self_attn.q_proj).__name__
print(json.dumps({"loaded": f"{type(model).__name__} ({kernel})", "output": f"{int(out.shape[1] - enc['input_ids'].shape[1])} tokens",
                  "finite": finite, "qtool_imported": "qtool" in sys.modules}))
