"""ONNX Runtime against the stock torch vision tower, at sizes the exporter never saw.

Each case makes deterministic synthetic images, preprocesses them with :mod:`qtool.runtime.vision`
(the same numpy code a deployment runs), and compares the ORT output of every exported precision
with ``visual(pixel_values, grid_thw)`` of the stock transformers module in float32: the merged
embeddings and, for Qwen3-VL, every DeepStack tap's features (an error is the worst of these).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from qtool.errors import QtoolError
from qtool.runtime import onnx_io as io
from qtool.runtime.vision import VisionEncoder, preprocess


class ValidationFailed(QtoolError):
    """The fp32 graph disagrees with torch: a bug in the export, not bad input."""

    exit_code = 3


def rel_l2(out: np.ndarray, ref: np.ndarray) -> float:
    return float(np.linalg.norm((out - ref).ravel()) / max(np.linalg.norm(ref.ravel()), 1e-30))


def max_abs(out: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(out - ref).max())


def synthetic_image(height: int, width: int, seed: int) -> Image.Image:
    """A smooth random field with edges and a little noise: closer to photos than white noise."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize((width, height), Image.BICUBIC)
    pixels = np.asarray(coarse).astype(np.int16)
    ys, xs = np.mgrid[:height, :width]
    box = (abs(ys - height / 2) < height / 5) & (abs(xs - width / 3) < width / 6)
    pixels[box] = rng.integers(0, 256, 3)
    pixels += rng.integers(-12, 13, pixels.shape, dtype=np.int16)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def case_images(sizes: Sequence[tuple[int, int]], seed: int = 0) -> list[Image.Image]:
    return [synthetic_image(h, w, seed + i) for i, (h, w) in enumerate(sizes)]


def torch_outputs(visual, pixel_values: np.ndarray, grids) -> list[np.ndarray]:
    """The stock tower's merged embeddings, then each DeepStack tap's features (Qwen3-VL)."""
    import torch

    with torch.no_grad():
        out = visual(torch.from_numpy(pixel_values), grid_thw=torch.tensor(grids, dtype=torch.long))
    return [t.float().numpy() for t in (out.pooler_output, *(getattr(out, "deepstack_features", None) or ()))]


def torch_embeds(visual, pixel_values: np.ndarray, grids) -> np.ndarray:
    return torch_outputs(visual, pixel_values, grids)[0]


def outputs_of(result) -> list[np.ndarray]:
    """A runtime VisionOutput in torch_outputs' order."""
    return [result.embeds, *(() if result.deepstack is None else result.deepstack)]


def compare(result, ref: list[np.ndarray]) -> dict:
    """The worst relative L2 and absolute error over every output, and whether every shape matches."""
    mine = outputs_of(result)
    same = len(mine) == len(ref) and all(m.shape == r.shape for m, r in zip(mine, ref))
    return {"rel_l2": max(rel_l2(m, r) for m, r in zip(mine, ref)) if same else float("inf"),
            "max_abs": max(max_abs(m, r) for m, r in zip(mine, ref)) if same else float("inf"), "shape_ok": same}


def validate(visual, folder: Path, precisions: Sequence[str],
             cases: dict[str, tuple[tuple[int, int], ...]] = io.VALIDATION_CASES) -> dict:
    """Errors of each precision in ``folder`` against torch, per case: the body of validation.json."""

    encoders = {p: VisionEncoder(folder, p) for p in precisions}
    config = next(iter(encoders.values())).config
    rows = []
    for seed, (name, sizes) in enumerate(cases.items()):
        done = [preprocess(image, config) for image in case_images(sizes, seed=100 * seed)]
        pixel_values = np.concatenate([patches for patches, _ in done])
        grids = [grid for _, grid in done]
        ref = torch_outputs(visual, pixel_values, grids)
        row = {"case": name, "images": [list(s) for s in sizes], "grids": [list(g) for g in grids],
               "patches": int(pixel_values.shape[0]), "tokens": int(ref[0].shape[0]), "outputs": len(ref),
               "precisions": {}}
        for precision, encoder in encoders.items():
            start = time.perf_counter()
            out = encoder.run(pixel_values, grids)
            row["precisions"][precision] = {**compare(out, ref),
                                            "ort_ms": round(1000 * (time.perf_counter() - start), 2)}
        rows.append(row)
    return {"reference": "transformers vision tower, float32", "export_grids": [list(s) for s in io.EXPORT_GRIDS],
            "fp32_max_rel_l2": io.FP32_MAX_REL_L2, "cases": rows, "worst": _worst(rows),
            "passed": all(r["precisions"]["fp32"]["rel_l2"] <= io.FP32_MAX_REL_L2
                          and r["precisions"]["fp32"]["shape_ok"] for r in rows)}


def check(report: dict) -> None:
    """Raise :class:`ValidationFailed` when fp32 is off anywhere."""
    if report["passed"]:
        return
    bad = max(report["cases"], key=lambda r: r["precisions"]["fp32"]["rel_l2"])
    raise ValidationFailed(
        f"fp32 ONNX output differs from torch on {bad['case']} (relative L2 "
        f"{bad['precisions']['fp32']['rel_l2']:.2e} > {io.FP32_MAX_REL_L2:.0e})",
        "please report this with the model's config.json; the output folder was not written")


def _worst(rows: list[dict]) -> dict:
    precisions = rows[0]["precisions"] if rows else {}
    return {p: {"rel_l2": max(r["precisions"][p]["rel_l2"] for r in rows),
                "max_abs": max(r["precisions"][p]["max_abs"] for r in rows)} for p in precisions}
