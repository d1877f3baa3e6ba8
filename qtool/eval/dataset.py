"""Evaluation sets: VQA JSONL ``{"id"?, "image", "question", "answer", "type"?}`` and caption JSONL
``{"id"?, "image", "text", "prompt"?}``.

Validated like calibration sets: every bad record is reported with its line,
and a set with any bad record is rejected (an accuracy over a silently
filtered set would not be comparable between runs).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from qtool import paths
from qtool.calibration.records import jsonl_lines, resolve_image
from qtool.errors import QtoolError

CAPTION_PROMPT = "Describe this image."
TEST_SET = paths.ASSETS / "qwen2-vl-tiny-test" / "questions.jsonl"   # the bundled model's test split


@dataclass(frozen=True)
class VQAItem:
    id: str
    image: Path
    question: str
    answer: str
    type: str


@dataclass(frozen=True)
class CaptionItem:
    id: str
    image: Path
    text: str
    prompt: str = CAPTION_PROMPT


def default_dataset(model_path: Path) -> Path:
    if model_path.resolve() == (paths.ASSETS / "qwen2-vl-tiny").resolve():
        return TEST_SET
    raise QtoolError(f"no default evaluation set for {model_path}",
                     "pass --dataset FILE.jsonl with {\"image\", \"question\", \"answer\"} records")


def default_captions(dataset: Path) -> Path | None:
    path = dataset.parent / "captions.jsonl"
    return path if path.is_file() else None


def _records(path: Path, required: tuple[str, ...], limit: int | None) -> list[tuple[int, dict]]:
    if not path.is_file():
        raise QtoolError(f"dataset {path} does not exist", "pass a .jsonl file")
    folder, rows, problems, ids = path.parent.resolve(), [], [], set()
    lines = jsonl_lines(path, f"dataset {path}")
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if limit is not None and len(rows) >= limit:
            break
        where = f"{path.name} line {no}"
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{where}: not valid JSON ({exc.msg})")
            continue
        if not isinstance(rec, dict):
            problems.append(f"{where}: a record must be a JSON object")
            continue
        bad = [k for k in required if not isinstance(rec.get(k), str) or not rec[k].strip()]
        if bad:
            problems.append(f"{where}: missing or empty {', '.join(bad)}")
            continue
        rid = str(rec.get("id", f"line-{no}"))
        if rid in ids:
            problems.append(f"{where}: duplicate id {rid!r}")
            continue
        ids.add(rid)
        image, problem = resolve_image(folder, rec["image"])
        if problem:
            problems.append(f"{where}: {problem}")
            continue
        rows.append((no, dict(rec, id=rid, image=image)))
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise QtoolError(f"{problems[0]}{more}", "fix or remove the bad records")
    if not rows:
        raise QtoolError(f"dataset {path} has no records", "add JSONL records")
    return rows


def load_vqa(path: Path, limit: int | None = None) -> list[VQAItem]:
    return [VQAItem(r["id"], r["image"], r["question"], r["answer"], str(r.get("type", "all")))
            for _, r in _records(path, ("image", "question", "answer"), limit)]


def load_captions(path: Path, limit: int | None = None) -> list[CaptionItem]:
    return [CaptionItem(r["id"], r["image"], r["text"], str(r.get("prompt") or CAPTION_PROMPT))
            for _, r in _records(path, ("image", "text"), limit)]
