"""End to end: held-out answers with ONNX Runtime vision embeddings and the torch language model.

The ONNX path runs :class:`qtool.runtime.vision.VisionEncoder` on each image (numpy preprocessing,
ORT graph) and hands the embeddings to ``generate`` as ``mm_encoder_outputs``; the prompt, the
image placeholder tokens and the 3D rotary positions come from the processor and
``image_grid_thw`` exactly as in the all-torch path (:func:`qtool.infer.answer`), so the only
difference between the two is the vision tower.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image

from qtool.eval.agreement import Agreement, agreement
from qtool.eval.dataset import VQAItem, load_vqa
from qtool.infer import answer, user_turn
from qtool.paths import ASSETS

HELDOUT = ASSETS / "qwen2-vl-tiny-heldout"


Question = VQAItem  # one held-out question: id, image, question, answer, type


def load_questions(folder: Path = HELDOUT, limit: int | None = None) -> list[Question]:
    """The held-out VQA set (``questions.jsonl`` + images), the first ``limit`` questions if given."""
    return load_vqa(Path(folder) / "questions.jsonl", limit)


def load_model(path: str | Path):
    """The full model in float32 and its processor (CPU, eval mode)."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(path, dtype=torch.float32).eval()
    return model, AutoProcessor.from_pretrained(path)


def answers_torch(model, processor, questions: Sequence[Question], batch_size: int = 32) -> list[str]:
    images = _images(questions)
    return answer(model, processor, [images[q.image] for q in questions], [q.question for q in questions],
                  batch_size=batch_size)


@torch.inference_mode()
def answers_onnx(model, processor, encoder, questions: Sequence[Question], batch_size: int = 32,
                 max_new_tokens: int = 24) -> list[str]:
    """Greedy answers with the vision embeddings from ``encoder`` (a VisionEncoder), batched like infer.answer."""
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    images = _images(questions)
    embeds = {}
    tokenizer = processor.tokenizer
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    out: list[str] = []
    try:
        for start in range(0, len(questions), batch_size):
            batch = questions[start:start + batch_size]
            texts = [processor.apply_chat_template([user_turn(images[q.image], q.question)], tokenize=False,
                                                   add_generation_prompt=True) for q in batch]
            enc = processor(text=texts, images=[images[q.image] for q in batch], padding=True, return_tensors="pt")
            enc.pop("pixel_values")
            for q in batch:
                if q.image not in embeds:
                    embeds[q.image] = encoder.encode([images[q.image]])
            grids = [list(embeds[q.image].grids[0]) for q in batch]
            if grids != enc["image_grid_thw"].tolist():
                raise RuntimeError(f"runtime grids {grids} differ from the processor's")
            vision = BaseModelOutputWithPooling(
                pooler_output=tuple(torch.from_numpy(embeds[q.image].embeds).float() for q in batch))
            gen = model.generate(**enc, mm_encoder_outputs={"image": vision}, max_new_tokens=max_new_tokens,
                                 do_sample=False)
            new = gen[:, enc["input_ids"].shape[1]:]
            out += [t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True)]
    finally:
        tokenizer.padding_side = side
    return out


def heldout_agreement(model: str | Path, onnx_dir: str | Path, precision: str = "fp32", limit: int | None = None,
                      folder: Path = HELDOUT, batch_size: int = 32) -> Agreement:
    """Answer the held-out questions both ways and compare."""
    from qtool.models.checkpoint import resolve_model
    from qtool.runtime.vision import VisionEncoder

    lm, processor = load_model(resolve_model(model))
    questions = load_questions(folder, limit)
    encoder = VisionEncoder(onnx_dir, precision)
    reference = answers_torch(lm, processor, questions, batch_size)
    return agreement(questions, reference, answers_onnx(lm, processor, encoder, questions, batch_size))


def _images(questions: Sequence[Question]) -> dict[Path, Image.Image]:
    return {path: Image.open(path).convert("RGB") for path in dict.fromkeys(q.image for q in questions)}
