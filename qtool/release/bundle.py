"""One writer for a release folder: variants in, checksums and manifest out, in that order."""

from __future__ import annotations

import json
from enum import Enum, auto
from pathlib import Path

from qtool.fingerprint import sha256_file

CHECKSUMS = "SHA256SUMS"
MANIFEST = "release.json"


class Stage(Enum):
    OPEN = auto()
    VARIANTS = auto()
    SEALED = auto()


class BundleWriter:
    def __init__(self, root: Path):
        self.root, self.stage, self.variants = Path(root), Stage.OPEN, {}

    def _advance(self, allowed: tuple[Stage, ...], to: Stage) -> None:
        if self.stage not in allowed:
            raise ValueError(f"expected {' or '.join(s.name for s in allowed)}, got {self.stage.name}")
        self.stage = to

    def add_variant(self, name: str, record: dict) -> None:
        self._advance((Stage.OPEN, Stage.VARIANTS), Stage.VARIANTS)
        if name in self.variants:
            raise ValueError(f"duplicate variant {name}")
        if not (self.root / name).is_dir():
            raise ValueError(f"variant folder {name} is missing")
        self.variants[name] = record

    def seal(self, manifest: dict) -> dict:
        """Hash every file under the root (except the two files written here) and write both."""
        self._advance((Stage.VARIANTS,), Stage.SEALED)
        files = {}
        for path in sorted(p for p in self.root.rglob("*") if p.is_file()):
            rel = path.relative_to(self.root).as_posix()
            if rel in (CHECKSUMS, MANIFEST) or rel.startswith("."):
                continue
            files[rel] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
        (self.root / CHECKSUMS).write_text("".join(f"{f['sha256']}  {rel}\n" for rel, f in files.items()))
        full = dict(manifest, variants=self.variants, files=files)
        (self.root / MANIFEST).write_text(json.dumps(full, indent=2) + "\n")
        return full
