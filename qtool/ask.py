"""Ask several models the same image questions (the demo's float-vs-quantized view)."""

from __future__ import annotations

from pathlib import Path

from qtool import infer, paths
from qtool.calibration.images import load_image
from qtool.eval.dataset import load_vqa
from qtool.models.checkpoint import inspect_checkpoint, resolve_model


def ask(models: list[str], *, image: Path | None = None, question: str | None = None,
        heldout: int | None = None) -> list[dict]:
    if heldout is not None:
        items = load_vqa(paths.ASSETS / "qwen2-vl-tiny-heldout" / "questions.jsonl", heldout)
        rows = [{"question": it.question, "expected": it.answer, "image": it.image.name} for it in items]
        images, questions = [load_image(it.image) for it in items], [it.question for it in items]
    else:
        rows = [{"question": question, "image": Path(image).name}]
        images, questions = [load_image(image)], [question]
    for name in models:
        path = inspect_checkpoint(resolve_model(name)).path
        model, processor = infer.load_model(path)
        for row, answer in zip(rows, infer.answer(model, processor, images, questions)):
            row[Path(name).name] = answer
    return rows
