"""What a calibration set holds, per sample, as a model's processor will see it."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from qtool.calibration.images import load_image
from qtool.calibration.records import CalibSet, load_records
from qtool.errors import QtoolError

QWEN_DEFAULTS = {"min_pixels": 56 * 56, "max_pixels": 28 * 28 * 1280, "factor": 28}


def pixel_limits(model_dir: Path | None) -> dict:
    """min/max pixels and the resize factor from a model folder's processor config (no weights loaded).

    Looks for ``preprocessor_config.json`` or ``processor_config.json`` in the folder or its
    ``processor/`` subfolder; ``size: {shortest_edge, longest_edge}`` (transformers 5) or the older
    ``min_pixels``/``max_pixels``. Without a config, Qwen2-VL's defaults apply; ``source`` says which.
    """
    limits = dict(QWEN_DEFAULTS, source="Qwen2-VL defaults")
    if model_dir is None:
        return limits
    for f in (Path(model_dir) / sub / name for sub in ("", "processor")
              for name in ("preprocessor_config.json", "processor_config.json")):
        if not f.is_file():
            continue
        try:
            cfg = json.loads(f.read_text(encoding="utf-8"))
            cfg = cfg.get("image_processor", cfg)
            size = cfg.get("size") or {}
            limits["min_pixels"] = int(size.get("shortest_edge", cfg.get("min_pixels", limits["min_pixels"])))
            limits["max_pixels"] = int(size.get("longest_edge", cfg.get("max_pixels", limits["max_pixels"])))
            limits["factor"] = int(cfg.get("patch_size", 14)) * int(cfg.get("merge_size", 2))
        except (ValueError, TypeError, AttributeError, UnicodeDecodeError) as exc:
            raise QtoolError(f"processor config {f} is not usable ({type(exc).__name__})",
                             "restore it from the model's original files") from None
        if limits["factor"] <= 0 or not 0 < limits["min_pixels"] <= limits["max_pixels"]:
            raise QtoolError(f"processor config {f} has impossible limits {limits}",
                             "restore it from the model's original files")
        limits["source"] = str(f)
        return limits
    return limits


def visual_tokens(width: int, height: int, limits: dict) -> int:
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    h, w = smart_resize(height, width, factor=limits["factor"], min_pixels=limits["min_pixels"],
                        max_pixels=limits["max_pixels"])
    return (h // limits["factor"]) * (w // limits["factor"])


def inspect_set(path: Path, model_dir: Path | None = None) -> dict:
    calib: CalibSet = load_records(path, strict=False)
    limits = pixel_limits(model_dir)
    samples = []
    for r in calib.records:
        width, height = load_image(r.image).size      # as the processor sees it (EXIF orientation applied)
        samples.append({"id": r.id, "image": r.image.name, "width": width, "height": height,
                        "visual_tokens": visual_tokens(width, height, limits),
                        "text_chars": sum(len(m["content"]) for m in r.messages) if r.messages else len(r.text),
                        "turns": len(r.messages) if r.messages else 2})
    return {
        "path": str(calib.path), "records": len(calib.records), "problems": list(calib.problems),
        "sha256": calib.sha256, "pixel_limits": limits,
        "visual_tokens": dict(_stats([s["visual_tokens"] for s in samples]),
                              total=sum(s["visual_tokens"] for s in samples)),
        "image_width": _stats([s["width"] for s in samples]),
        "image_height": _stats([s["height"] for s in samples]),
        "image_pixels": _stats([s["width"] * s["height"] for s in samples]),
        "text_chars": _stats([s["text_chars"] for s in samples]),
        "samples": samples,
    }


def _stats(values: list) -> dict:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}
