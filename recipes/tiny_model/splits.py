"""The tiny model's question sets: ``validation`` (what training evaluates on) and ``test`` (what qtool measures).

The test split is disjoint from training by construction: its scenes use only layouts (colour, shape, cell) that
no other split can draw (tasks.reserved_layouts()). Every one- and two-object layout occurs in training, so every test
scene has three objects. The validation split is the stream training evaluated on while the recipe's stopping
points were chosen; it shares 23 of its 500 scenes with training. One question of every type per scene.
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


def items(split: str, scenes: int = SCENES, kinds: tuple[str, ...] = tasks.QUESTION_TYPES) -> list[Item]:
    out = []
    for i in range(scenes):
        _, qs = tasks.sample(split, i)
        out += [Item(f"{split}-{i:04d}-{q.kind}", i, q.kind, q.question, q.answer) for q in qs if q.kind in kinds]
    return out


def image(split: str, scene_index: int) -> Image.Image:
    return tasks.scene(split, scene_index).render()


def write(folder: Path, split: str = "test", scenes: int = SCENES) -> Path:
    """Write the split as a VQA JSONL (``{"id", "image", "question", "answer", "type"}``) plus PNGs."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for it in items(split, scenes):
        name = f"images/scene-{it.scene:04d}.png"
        if not (folder / name).exists():
            image(split, it.scene).save(folder / name, optimize=True)
        rows.append({"id": it.id, "image": name, "question": it.question, "answer": it.answer, "type": it.kind})
    path = folder / "questions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    # captions in the form the model was trained to produce, on this split's scenes only
    captions = [{"id": f"{split}-{i:04d}-caption", "image": f"images/scene-{i:04d}.png",
                 "prompt": "Describe the image.", "text": tasks.describe(tasks.scene(split, i))}
                for i in range(scenes)]
    (folder / "captions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in captions))
    return path
