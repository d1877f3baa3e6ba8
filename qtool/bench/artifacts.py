"""Quantized artifacts for benchmarking, produced on demand and cached.

The cache key is (source weights hash, profile, calibration set hash, samples):
a changed input gives a new artifact, an unchanged one is never rebuilt.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from qtool import paths, profiles
from qtool.fingerprint import sha256_files
from qtool.models.checkpoint import inspect_checkpoint
from qtool.quantization import quantize


def calib_hash(calib: Path) -> str:
    folder = calib if calib.is_dir() else calib.parent
    return sha256_files(p for p in folder.rglob("*") if p.is_file())


def artifact_for(model: Path, profile: profiles.Profile, *, calib: Path | None = None, samples: int | None = None,
                 device: str = "cpu", progress=None) -> Path:
    if isinstance(profile, profiles.FloatProfile):
        return model
    info = inspect_checkpoint(model)
    calib = Path(calib or paths.CALIB_DATA)
    exported = isinstance(profile, profiles.EXPORTED)
    inputs = [] if exported else [calib_hash(calib), samples]   # llama.cpp's quants and ORT's use no calibration
    key = json.dumps([sha256_files(info.weight_files), profiles.to_record(profile), *inputs])
    path = paths.cache() / "artifacts" / f"{model.name}-{profile.name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    if (path / "qtool.json").is_file():
        return path
    build_artifact(model, profile, path, calib=calib, samples=samples, device=device, progress=progress)
    return path


def build_artifact(model: Path, profile: profiles.Profile, out: Path, *, calib: Path | None = None,
                   samples: int | None = None, device: str = "cpu", progress=None) -> None:
    """``profile``'s artifact of ``model`` in ``out`` (replaced; each builder stages and renames)."""
    if isinstance(profile, profiles.GGUFProfile):
        from qtool.export.gguf_export import export_gguf

        export_gguf(model, out, quants=(profile.quant,), mmproj=profile.mmproj, force=True)
    elif isinstance(profile, profiles.ONNXVisionProfile):
        from qtool.export.onnx_vision import export_onnx

        export_onnx(model, out, precisions=(profile.precision,), force=True)
    else:
        quantize(model, profile, out=out, calib=calib, samples=samples, device=device, force=True, progress=progress)
