"""The kinds of release variant: how each is built, which consumer loads it, how its answers are checked.

* quantized (GPTQ / AWQ / RTN): a transformers checkpoint made by ``qtool quantize``;
* gguf: the language model + mmproj for llama.cpp, made by ``qtool export gguf``;
* onnx-vision: the vision tower for ONNX Runtime, made by ``qtool export onnx``.

Every variant's ``qtool.json`` names the profile and source hash it was made from, which is what
decides whether a re-run must rebuild it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from qtool import profiles

CONSUMERS = {"quantized": "transformers", "gguf": "llama.cpp", "onnx-vision": "onnxruntime"}


def kind_of(profile: profiles.Profile) -> str:
    if isinstance(profile, profiles.QUANTIZED):
        return "quantized"
    if isinstance(profile, profiles.GGUFProfile):
        return "gguf"
    return "onnx-vision"


def build(source: Path, profile: profiles.Profile, folder: Path, *, calib: Path, samples: int | None,
          progress=None) -> None:
    """Write the complete variant to ``folder``; an export's manifest does not know the profile: add it."""
    from qtool.bench.artifacts import build_artifact

    build_artifact(source, profile, folder, calib=calib, samples=samples, progress=progress)
    if kind_of(profile) == "quantized":
        return
    manifest_file = folder / "qtool.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["profile"] = profiles.to_record(profile)
    manifest_file.write_text(json.dumps(manifest, indent=2) + "\n")


def inputs_of(folder: Path) -> dict | None:
    """(source hash, profile, calibration hash) as recorded in a complete variant, else None."""
    try:
        m = json.loads((folder / "qtool.json").read_text())
        source = m["source"]["sha256"] if "source" in m else m["source_sha256"]
        return {"source_sha256": source, "profile": m["profile"],
                "calibration_sha256": (m.get("calibration") or {}).get("sha256")}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def answer_agreement(source: Path, exported: dict[str, tuple[profiles.Profile, Path]], limit: int | None) -> list[dict]:
    """Held-out answers of each exported variant against the float32 torch model's, same questions."""
    if not exported:
        return []
    from qtool.eval.agreement import agreement
    from qtool.export import onnx_e2e

    questions = onnx_e2e.load_questions(limit=limit)
    lm, processor = onnx_e2e.load_model(source)
    reference = onnx_e2e.answers_torch(lm, processor, questions)
    rows = []
    for name, (profile, folder) in exported.items():
        candidate = _answers(profile, folder, lm, processor, questions)
        result = agreement(questions, reference, candidate)
        rows.append({"variant": name, "runtime": CONSUMERS[kind_of(profile)], "questions": result.questions,
                     "answers = float32": f"{result.rate:.1%}", "accuracy": f"{result.accuracy_candidate:.1%}",
                     "float32 accuracy": f"{result.accuracy_reference:.1%}"})
    return rows


def _answers(profile, folder: Path, lm, processor, questions: Sequence) -> list[str]:
    from qtool.export import onnx_e2e

    if isinstance(profile, profiles.ONNXVisionProfile):
        from qtool.runtime.vision import VisionEncoder

        return onnx_e2e.answers_onnx(lm, processor, VisionEncoder(folder, profile.precision), questions)
    from PIL import Image

    from qtool.export.gguf_export import gguf_files
    from qtool.runtime.llamacpp import GGUFModel

    text_file, mmproj = gguf_files(folder, profile.quant)
    model = GGUFModel(text_file, mmproj, n_ctx=1024)
    images = {p: Image.open(p).convert("RGB") for p in dict.fromkeys(q.image for q in questions)}
    return [model.answer(images[q.image], q.question) for q in questions]
