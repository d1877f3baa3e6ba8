"""Calibration sets: a folder with ``records.jsonl``.

Each line: ``{"id": str, "image": "relative/path", "text": str}``, optionally with
``"messages": [{"role": "user"|"assistant", "content": str}, ...]`` for multi-turn
records (then ``text`` may be omitted). Image paths are relative to the set's
folder and may not leave it (no absolute paths, no ``..``, no symlinks out).
"""

from __future__ import annotations

import codecs

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from qtool.calibration.images import check_image, shown
from qtool.errors import QtoolError

RECORDS = "records.jsonl"
ROLES = ("user", "assistant")


@dataclass(frozen=True)
class CalibRecord:
    id: str
    image: Path
    text: str
    messages: tuple[dict, ...] | None
    line: int


@dataclass(frozen=True)
class CalibSet:
    path: Path
    records: tuple[CalibRecord, ...]
    problems: tuple[str, ...]
    sha256: str


def records_file(path: Path) -> Path:
    path = Path(path)
    if path.is_dir():
        path = path / RECORDS
    if not path.is_file():
        raise QtoolError(f"calibration set {shown(path)} does not exist",
                         f"pass a folder with {RECORDS} (see qtool/calibration/default_set/README.md) or the .jsonl file")
    return path


def _messages(raw, where: str) -> tuple[tuple[dict, ...] | None, str | None]:
    if raw is None:
        return None, None
    if not isinstance(raw, list) or not raw:
        return None, f"{where}: messages must be a non-empty list"
    out = []
    for m in raw:
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str) \
                or not m["content"].strip():
            return None, f"{where}: each message needs role user/assistant and non-empty content"
        out.append({"role": m["role"], "content": m["content"]})
    if out[0]["role"] != "user":
        return None, f"{where}: messages must start with a user turn"
    return tuple(out), None


def _parse(line: str, no: int, folder: Path, seen: set) -> tuple[CalibRecord | None, str | None]:
    where = f"line {no}"
    try:
        rec = json.loads(line)
    except json.JSONDecodeError as exc:
        return None, f"{where}: not valid JSON ({exc.msg})"
    if not isinstance(rec, dict):
        return None, f"{where}: a record must be a JSON object"
    rid = rec.get("id")
    if not isinstance(rid, str) or not rid.strip():
        return None, f"{where}: missing or empty id"
    where = f"line {no} (id {rid!r})"
    if rid in seen:
        return None, f"{where}: duplicate id"
    seen.add(rid)
    messages, problem = _messages(rec.get("messages"), where)
    if problem:
        return None, problem
    text = rec.get("text", "")
    if not isinstance(text, str):
        return None, f"{where}: text must be a string, not {type(text).__name__}"
    if not text.strip() and not messages:
        return None, f"{where}: {'empty' if 'text' in rec else 'missing'} text (give text or messages)"
    resolved, problem = resolve_image(folder, rec.get("image"))
    if problem:
        return None, f"{where}: {problem}"
    return CalibRecord(rid, resolved, text, messages, no), None


def resolve_image(folder: Path, image) -> tuple[Path | None, str | None]:
    """A record's image path, resolved inside ``folder`` and checked, or the problem in one line."""
    if image is not None and not isinstance(image, str):
        return None, f"image must be a path string, not {type(image).__name__}"
    if not isinstance(image, str) or not image.strip():
        return None, "missing image path"
    if "\x00" in image:
        return None, "image path contains a NUL byte"
    if Path(image).is_absolute():
        return None, f"image path {image!r} is absolute; use a path relative to the set's folder"
    try:
        resolved = (folder / image).resolve()
        if not resolved.is_relative_to(folder):
            return None, f"image path {image!r} escapes the set's folder"
        return resolved, check_image(resolved)
    except (OSError, ValueError) as exc:
        return None, f"image path {image!r} is not usable ({type(exc).__name__})"


def jsonl_lines(path: Path, what: str) -> list[str]:
    """The lines of a JSONL file as common editors write it: UTF-8 with or without a byte-order mark, UTF-16
    with one (Windows "Unicode"), and LF, CRLF or CR line ends."""
    data = path.read_bytes()
    try:
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            text = data.decode("utf-16")
        else:
            text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise QtoolError(f"{what} is neither UTF-8 nor UTF-16 text", "save it as UTF-8 JSONL") from None
    # not splitlines(): JSON strings may hold U+2028; a raw CR is never inside valid JSON
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def check_set(path: Path) -> CalibSet:
    """Check every record; bad ones go to ``problems`` (one line each), even if none is valid.

    Raises QtoolError only for a missing, non-UTF-8 or empty set.
    """
    file = records_file(path)
    folder = file.parent.resolve()
    lines = jsonl_lines(file, f"calibration set {shown(file)}")
    records, problems, seen = [], [], set()
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        record, problem = _parse(line, no, folder, seen)
        if problem:
            problems.append(f"{shown(file.name)} {problem}")
        else:
            records.append(record)
    if not records and not problems:
        raise QtoolError(f"calibration set {shown(file)} is empty", "add image-text records (see qtool/calibration/default_set/README.md)")
    return CalibSet(file, tuple(records), tuple(problems), _hash(file, records))


def load_records(path: Path, *, strict: bool = True) -> CalibSet:
    """A validated set. ``strict``: any bad record is an error (one line naming the first);
    otherwise bad records are skipped and listed in ``problems``. No valid record is always an error."""
    calib = check_set(path)
    problems = calib.problems
    if not calib.records:
        raise QtoolError(f"calibration set {shown(calib.path)} has no valid records ({len(problems)} bad; first: "
                         f"{problems[0]})", "fix the records; `qtool calib validate` lists every problem")
    if strict and problems:
        more = f" and {len(problems) - 1} more" if len(problems) > 1 else ""
        raise QtoolError(f"{problems[0]}{more}", "fix or remove the bad records; `qtool calib validate` lists them")
    return calib


def _hash(file: Path, records: list[CalibRecord]) -> str:
    h = hashlib.sha256(file.read_bytes())
    for image in sorted({r.image for r in records}):
        h.update(str(image.relative_to(file.parent.resolve())).encode())
        h.update(hashlib.sha256(image.read_bytes()).digest())
    return h.hexdigest()
