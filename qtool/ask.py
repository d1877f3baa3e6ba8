"""Ask several models the same image questions (the demo's float-vs-quantized view).

Each model is a checkpoint folder, a bundled name or any artifact qtool made; it answers through the
consumer its kind names (transformers, llama.cpp, ONNX Runtime vision + torch).
"""

from __future__ import annotations

from pathlib import Path

from qtool import artifacts as registry
from qtool.calibration.images import load_image
from qtool.eval.dataset import TEST_SET, load_vqa


def ask(models: list[str], *, image: Path | None = None, question: str | None = None,
        heldout: int | None = None) -> list[dict]:
    if heldout is not None:
        items = load_vqa(TEST_SET, heldout)
        rows = [{"question": it.question, "expected": it.answer, "image": it.image.name} for it in items]
        images, questions = [load_image(it.image) for it in items], [it.question for it in items]
    else:
        rows = [{"question": question, "image": Path(image).name}]
        images, questions = [load_image(image)], [question]
    for name in models:
        _, consumer = registry.open_folder(name)
        for row, answer in zip(rows, consumer.answer(images, questions)):
            row[Path(name).name] = answer
    return rows
