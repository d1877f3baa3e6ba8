"""Answer held-out questions with STOCK transformers only (never imports qtool).

    python answer.py MODEL_DIR QUESTIONS_JSONL N  -> JSON list of answers on stdout
"""

import json
import sys
from pathlib import Path

import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

model_dir, questions, n = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(2)
model = AutoModelForImageTextToText.from_pretrained(model_dir)
processor = AutoProcessor.from_pretrained(model_dir)
processor.tokenizer.padding_side = "left"
rows = [json.loads(line) for line in questions.read_text().splitlines()[:n]]
answers = []
for start in range(0, len(rows), 50):
    batch = rows[start:start + 50]
    images = [Image.open(questions.parent / r["image"]).convert("RGB") for r in batch]
    texts = [processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": r["question"]}]}],
        tokenize=False, add_generation_prompt=True) for r in batch]
    enc = processor(text=texts, images=images, padding=True, return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**enc, max_new_tokens=24, do_sample=False)
    answers += [a.strip() for a in processor.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)]
assert "qtool" not in sys.modules
print(json.dumps({"answers": answers, "linear": type(model.model.language_model.layers[0].mlp.down_proj).__name__}))
