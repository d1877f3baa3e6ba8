"""Smoke-load one artifact with stock transformers and run one image forward (no qtool import).

    python smoke_transformers.py MODEL_DIR  -> prints a JSON line
"""

import json
import sys

import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

path = sys.argv[1]
model = AutoModelForImageTextToText.from_pretrained(path)
processor = AutoProcessor.from_pretrained(path)
messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe the image."}]}]
text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
enc = processor(text=[text], images=[Image.new("RGB", (112, 112), (220, 40, 40))], return_tensors="pt")
with torch.inference_mode():
    out = model.generate(**enc, max_new_tokens=4, do_sample=False)
finite = bool(torch.isfinite(model(**enc).logits).all())
print(json.dumps({"loaded": type(model).__name__, "output": f"{int(out.shape[1] - enc['input_ids'].shape[1])} tokens",
                  "finite": finite, "qtool_imported": "qtool" in sys.modules}))
