"""What a calibration set holds, per sample, as a model's processor will see it."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from PIL import Image

from qtool.calibration.records import CalibSet, load_records

QWEN_DEFAULTS = {"min_pixels": 56 * 56, "max_pixels": 28 * 28 * 1280, "factor": 28}


def pixel_limits(model_dir: Path | None) -> dict:
    """min/max pixels and the resize factor from a model folder's processor config (no weights loaded)."""
    limits = dict(QWEN_DEFAULTS)
    if model_dir is None:
        return limits
    for name in ("preprocessor_config.json", "processor_config.json"):
        f = Path(model_dir) / name
        if f.is_file():
            cfg = json.loads(f.read_text())
            cfg = cfg.get("image_processor", cfg)
            size = cfg.get("size") or {}
            limits["min_pixels"] = size.get("shortest_edge", cfg.get("min_pixels", limits["min_pixels"]))
            limits["max_pixels"] = size.get("longest_edge", cfg.get("max_pixels", limits["max_pixels"]))
            limits["factor"] = cfg.get("patch_size", 14) * cfg.get("merge_size", 2)
            break
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
        with Image.open(r.image) as im:
            width, height = im.size
        samples.append({"id": r.id, "image": r.image.name, "width": width, "height": height,
                        "visual_tokens": visual_tokens(width, height, limits),
                        "text_chars": len(r.text) + sum(len(m["content"]) for m in r.messages or ()),
                        "turns": len(r.messages) if r.messages else 2})
    tokens = [s["visual_tokens"] for s in samples]
    pixels = [s["width"] * s["height"] for s in samples]
    return {
        "path": str(calib.path), "records": len(calib.records), "problems": list(calib.problems),
        "sha256": calib.sha256, "pixel_limits": limits,
        "visual_tokens": {"min": min(tokens), "median": statistics.median(tokens), "max": max(tokens),
                          "total": sum(tokens)},
        "image_pixels": {"min": min(pixels), "median": statistics.median(pixels), "max": max(pixels)},
        "text_chars": {"min": min(s["text_chars"] for s in samples),
                       "median": statistics.median(s["text_chars"] for s in samples),
                       "max": max(s["text_chars"] for s in samples)},
        "samples": samples,
    }
