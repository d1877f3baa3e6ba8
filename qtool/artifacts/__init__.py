"""The kinds of artifact qtool makes, and everything that differs between them.

A profile names a method; the method's kind decides how the artifact is built, what its cache key holds,
which consumer loads it and answers with it, which process measures it in ``bench``, what ``eval`` can
measure on it, how ``verify`` smoke-tests it and what its model card says. Commands ask this registry
instead of testing profile types. Adding a kind: one module beside this one and its line in ``KINDS``.

An artifact's inputs are (source weights hash, profile, calibration set hash): they are its cache key, they
are recorded in its ``qtool.json``, and a release rebuilds a variant exactly when they change.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from qtool import paths, profiles
from qtool.artifacts import float as float_kind
from qtool.artifacts import gguf, onnx_vision, quantized
from qtool.artifacts.kind import MANIFEST, ArtifactKind, BuildOptions, Consumer
from qtool.calibration.records import load_records
from qtool.errors import QtoolError
from qtool.models.checkpoint import CheckpointInfo, checkpoint_of

KINDS: tuple[ArtifactKind, ...] = (float_kind.KIND, quantized.KIND, gguf.KIND, onnx_vision.KIND)
SMOKE_DIR = Path(__file__).parent / "smoke"   # consumer-only scripts that verify runs as files

__all__ = ["KINDS", "MANIFEST", "ArtifactKind", "Consumer", "artifact_for", "build", "inputs", "kind_of",
           "kind_for_consumer", "describe", "load", "open_folder", "recorded_inputs", "resolve", "with_samples"]


def kind_of(profile: profiles.Profile) -> ArtifactKind:
    return next(k for k in KINDS if isinstance(profile, k.profile_types))


def kind_for_consumer(consumer: str) -> ArtifactKind | None:
    """The released kind a release manifest's ``kind`` field (its consumer) names."""
    return next((k for k in KINDS if k.releasable and k.consumer == consumer), None)


def with_samples(profile: profiles.Profile, samples: int | None) -> profiles.Profile:
    """``profile`` with a calibration sample count override, so the count is part of what is recorded."""
    if samples is None or not hasattr(profile, "samples"):
        return profile
    if samples < 1:
        raise QtoolError(f"--samples {samples} must be at least 1", "pass a positive number of calibration records")
    return dataclasses.replace(profile, samples=samples)


def resolve(source: CheckpointInfo, entries: list[str], samples: int | None = None
            ) -> tuple[list[profiles.Profile], dict[str, Path]]:
    """``--profiles`` entries: profile names or TOML files (built on demand), or folders qtool already built from
    ``source``, used as they are (their manifest names the profile). Returns the profiles and the given folders
    by profile name."""
    chosen, given = [], {}
    for entry in entries:
        folder = Path(entry)
        if not (folder / MANIFEST).is_file():
            chosen.append(with_samples(profiles.load_profile(entry), samples))
            continue
        recorded = recorded_inputs(folder)
        if recorded is None:
            raise QtoolError(f"{folder} is not a complete qtool artifact", "rebuild it, or name a profile instead")
        if recorded["source_sha256"] != source.sha256:
            raise QtoolError(f"{folder} was built from other weights than {source.path}",
                             "pass the model it was built from, or name its profile to build one from this model")
        profile = profiles.from_record(recorded["profile"])
        if profile.name in given or any(p.name == profile.name for p in chosen):
            raise QtoolError(f"profile {profile.name} is named twice", "give each profile or artifact once")
        chosen.append(profile)
        given[profile.name] = folder
    return chosen, given


def calibration_sha256(profile: profiles.Profile, calib: Path) -> str | None:
    return load_records(calib).sha256 if kind_of(profile).calibrated(profile) else None


def inputs(source: CheckpointInfo, profile: profiles.Profile, calib: Path) -> dict:
    return {"source_sha256": source.sha256, "profile": profiles.to_record(profile),
            "calibration_sha256": calibration_sha256(profile, calib)}


def recorded_inputs(folder: Path) -> dict | None:
    """The inputs a complete artifact folder records, else None."""
    try:
        m = json.loads((folder / MANIFEST).read_text())
        source = m["source"]["sha256"] if "source" in m else m["source_sha256"]
        return {"source_sha256": source, "profile": m["profile"],
                "calibration_sha256": (m.get("calibration") or {}).get("sha256")}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def build(source: CheckpointInfo, profile: profiles.Profile, out: Path, *, calib: Path | None = None,
          device: str = "cpu", progress=None) -> None:
    """``profile``'s artifact of ``source`` in ``out`` (replaced; each builder stages and renames), its
    manifest naming the profile."""
    kind = kind_of(profile)
    if kind.build is None:
        raise QtoolError(f"profile {profile.name} makes no artifact: it is the source checkpoint itself",
                         "use a quantized or exported profile")
    kind.build(source, profile, out, BuildOptions(calib=Path(calib or paths.CALIB_DATA), device=device,
                                                  progress=progress))
    manifest_file = out / MANIFEST
    manifest = json.loads(manifest_file.read_text())
    if "profile" not in manifest:    # exports record their files, not the profile they were asked for
        manifest["profile"] = profiles.to_record(profile)
        manifest_file.write_text(json.dumps(manifest, indent=2) + "\n")


def artifact_for(source: CheckpointInfo, profile: profiles.Profile, *, calib: Path | None = None,
                 device: str = "cpu", progress=None) -> Path:
    """``profile``'s artifact of ``source``: the source itself for float profiles, else built once into the
    cache under its inputs' hash and reused while they are unchanged."""
    if kind_of(profile).build is None:
        return source.path
    calib = Path(calib or paths.CALIB_DATA)
    key = hashlib.sha256(json.dumps(inputs(source, profile, calib)).encode()).hexdigest()[:12]
    path = paths.cache() / "artifacts" / f"{source.path.name}-{profile.name}-{key}"
    if not (path / MANIFEST).is_file():
        build(source, profile, path, calib=calib, device=device, progress=progress)
    return path


def load(path: Path, profile: profiles.Profile, source: Path, dtype: str | None = None) -> Consumer:
    """The artifact loaded by its own consumer, ready to answer (``dtype`` overrides the profile's)."""
    return kind_of(profile).load(Path(path), profile, Path(source), dtype)


def describe(model: str | Path) -> tuple[Path, profiles.Profile, Path]:
    """(folder, the profile that made it, its source checkpoint) of any folder qtool made; a plain checkpoint
    or bundled name is its own source in bf16. Transformers checkpoints are inspected before anything loads them."""
    folder = Path(model)
    manifest = json.loads((folder / MANIFEST).read_text()) if (folder / MANIFEST).is_file() else {}
    if "profile" not in manifest:
        path = checkpoint_of(model).path
        return path, profiles.load_profile("bf16"), path
    if (folder / "config.json").is_file():
        checkpoint_of(folder)
    source = manifest.get("model") or (manifest.get("source") or {}).get("path") or folder
    return folder, profiles.from_record(manifest["profile"]), Path(source)


def open_folder(model: str | Path) -> tuple[profiles.Profile, Consumer]:
    """Any folder qtool made (or a plain checkpoint / bundled name), loaded by the consumer its kind names."""
    folder, profile, source = describe(model)
    return profile, load(folder, profile, source)
