"""Greedy image-question answering shared by training, eval and the demo."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image


IGNORE = -100


def answer_mask(ids: torch.Tensor, prefix: list[int], end: int) -> torch.Tensor:
    """Labels that keep only assistant answers and their closing <|im_end|>."""
    labels = torch.full_like(ids, IGNORE)
    for row in range(ids.shape[0]):
        seq = ids[row].tolist()
        i = 0
        while i < len(seq):
            if seq[i:i + len(prefix)] == prefix:
                j = i + len(prefix)
                while j < len(seq) and seq[j] != end:
                    j += 1
                labels[row, i + len(prefix): j + 1] = ids[row, i + len(prefix): j + 1]
                i = j
            i += 1
    return labels


def load_model(path, dtype: str = "bfloat16"):
    """A model folder (float or GPTQ/AWQ) and its processor, loaded by stock transformers.

    GPTQModel prints and writes ``./logs`` while loading quantized kernels: that happens in a scratch folder.
    """
    from pathlib import Path

    from transformers import AutoModelForImageTextToText, AutoProcessor

    from qtool import paths
    from qtool.capture import engine_scratch

    path = Path(path).absolute()  # before engine_scratch changes the working directory
    with engine_scratch(paths.cache().absolute() / "engine-runs" / "load"):
        model = AutoModelForImageTextToText.from_pretrained(path, dtype=getattr(torch, dtype))
    return model.eval(), AutoProcessor.from_pretrained(path)


def user_turn(image: Image.Image | None, text: str) -> dict:
    content = ([{"type": "image"}] if image is not None else []) + [{"type": "text", "text": text}]
    return {"role": "user", "content": content}


@torch.inference_mode()
def answer(model, processor, images: Sequence[Image.Image], questions: Sequence[str],
           max_new_tokens: int = 24, batch_size: int = 32) -> list[str]:
    """Greedy answers, batched with left padding (same result as one by one)."""
    tokenizer = processor.tokenizer
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    out: list[str] = []
    try:
        for start in range(0, len(questions), batch_size):
            imgs = list(images[start:start + batch_size])
            texts = [
                processor.apply_chat_template([user_turn(im, q)], tokenize=False, add_generation_prompt=True)
                for im, q in zip(imgs, questions[start:start + batch_size])
            ]
            enc = processor(text=texts, images=imgs, padding=True, return_tensors="pt").to(model.device)
            gen = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False)
            new = gen[:, enc["input_ids"].shape[1]:]
            out += [t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True)]
    finally:
        tokenizer.padding_side = side
    return out
