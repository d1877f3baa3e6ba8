"""Answer held-out questions with STOCK transformers only (never imports qtool).

    python answer.py QUESTIONS_JSONL N MODEL_DIR [MODEL_DIR ...]
        -> JSON {MODEL_DIR: {"answers": [...], "linear": kernel class}} on stdout

Several models in one process: each is loaded by its own from_pretrained, so what one loads cannot help another.
"""

import json
import sys
from pathlib import Path

import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

questions, n, model_dirs = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
torch.set_num_threads(2)
rows = [json.loads(line) for line in questions.read_text().splitlines()[:n]]
images = [Image.open(questions.parent / r["image"]).convert("RGB") for r in rows]
result = {}
for model_dir in model_dirs:
    model = AutoModelForImageTextToText.from_pretrained(model_dir)
    processor = AutoProcessor.from_pretrained(model_dir)
    processor.tokenizer.padding_side = "left"
    answers = []
    for start in range(0, len(rows), 50):
        texts = [processor.apply_chat_template(
            [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": r["question"]}]}],
            tokenize=False, add_generation_prompt=True) for r in rows[start:start + 50]]
        enc = processor(text=texts, images=images[start:start + 50], padding=True, return_tensors="pt")
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=24, do_sample=False)
        answers += [a.strip() for a in
                    processor.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)]
    linear = type(model.model.language_model.layers[0].mlp.down_proj).__name__
    result[model_dir] = {"answers": answers, "linear": linear}
    del model
assert "qtool" not in sys.modules
print(json.dumps(result))
