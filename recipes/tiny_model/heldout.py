"""The fixed held-out question set of the tiny model.

Scenes come from the ``heldout`` seed stream, a different stream from training's; that does not make them
disjoint (issue #23 found 23 of the 500 scenes among the scenes training draws). One question of every type
per scene.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from recipes.tiny_model import tasks

SCENES = 500  # -> 500 questions per type


@dataclass(frozen=True)
class Item:
    id: str
    scene: int
    kind: str
    question: str
    answer: str


def items(scenes: int = SCENES, kinds: tuple[str, ...] = tasks.QUESTION_TYPES) -> list[Item]:
    out = []
    for i in range(scenes):
        _, qs = tasks.sample("heldout", i)
        out += [Item(f"heldout-{i:04d}-{q.kind}", i, q.kind, q.question, q.answer)
                for q in qs if q.kind in kinds]
    return out


def image(scene_index: int) -> Image.Image:
    return tasks.scene("heldout", scene_index).render()


def write(folder: Path, scenes: int = SCENES) -> Path:
    """Write the set as a VQA JSONL (``{"id", "image", "question", "answer", "type"}``) plus PNGs."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for it in items(scenes):
        name = f"images/scene-{it.scene:04d}.png"
        if not (folder / name).exists():
            image(it.scene).save(folder / name, optimize=True)
        rows.append({"id": it.id, "image": name, "question": it.question, "answer": it.answer, "type": it.kind})
    path = folder / "questions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    # captions in the form the model was trained to produce, on held-out scenes only
    captions = [{"id": f"heldout-{i:04d}-caption", "image": f"images/scene-{i:04d}.png",
                 "prompt": "Describe the image.", "text": tasks.describe(tasks.scene("heldout", i))}
                for i in range(scenes)]
    (folder / "captions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in captions))
    return path
