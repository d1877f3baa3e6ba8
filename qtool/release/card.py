"""A Hugging Face model card (README.md) for one release variant, with measured tables."""

from __future__ import annotations

from qtool import machine
from qtool.artifacts import ArtifactKind
from qtool.reporting import RANDOM_NOTE, markdown_table


def _tags(data: dict) -> list[str]:
    precision = data.get("quant") or data.get("precision") or f"int{data.get('bits')}"
    method = data["_type"].removesuffix("Profile").lower().replace("onnxvision", "onnx")
    return ["qwen2-vl", method, str(precision), "qtool"]


def recipe_rows(manifest: dict) -> list[dict]:
    data = manifest["profile"]["_data"]
    rows = [{"field": k, "value": v} for k, v in data.items() if k != "description"]
    calib = manifest.get("calibration")
    if calib:
        rows += [{"field": "calibration set", "value": f"{calib.get('path')} (sha256 {calib.get('sha256')})"},
                 {"field": "calibration samples", "value": calib.get("samples")}]
        if "awq_fitted_to" in calib:   # GPTQModel's AWQ keeps the last conversation unless they are packed
            rows.append({"field": "AWQ scales fitted to", "value": calib["awq_fitted_to"]})
    source = manifest["source"]["sha256"] if "source" in manifest else manifest["source_sha256"]
    rows.append({"field": "source weights sha256", "value": source})
    return rows + [{"field": f"{lib} version", "value": v} for lib, v in sorted(manifest.get("versions", {}).items())]


def render(variant: str, kind: ArtifactKind, manifest: dict, base_model: str, accuracy_rows: list[dict],
           bench_rows: list[dict], eval_machine: dict | None, bench_machine: dict | None,
           random_weights: bool) -> str:
    data = dict(manifest["profile"]["_data"], _type=manifest["profile"]["_type"])
    parts = ["---", f"base_model: {base_model}", f"library_name: {kind.card.library}",
             "pipeline_tag: image-text-to-text", "tags:", *[f"- {t}" for t in _tags(data)], "---", "", f"# {variant}",
             "", kind.card.intro(data, base_model), ""]
    if random_weights:
        parts += [RANDOM_NOTE, ""]
    parts += ["## Recipe", "", markdown_table(recipe_rows(manifest)), "", "## Usage", "",
              kind.card.usage(variant, manifest)]
    if accuracy_rows and not random_weights:
        how = ("`qtool eval`; every row against the bf16 reference on the same questions" if kind.teacher_forced else
               "greedy answers to the held-out questions, compared with the float32 torch model's")
        parts += ["## Accuracy and fidelity", "", f"Measured by {how}, on {machine.label(eval_machine or {})}.", "",
                  markdown_table(accuracy_rows), ""]
    if bench_rows:
        parts += ["## Speed and memory", "", f"Measured by `qtool bench` on {machine.label(bench_machine or {})}.",
                  "", markdown_table(bench_rows), ""]
    return "\n".join(parts)
