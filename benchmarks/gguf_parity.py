"""Benchmark the GGUF export of a model against transformers: logits, image embeddings, answers.

Exports MODEL (``qtool export gguf``) in f32, f16, q8_0, q5_k_m, q4_k_m and q4_0 with an F16 mmproj,
then records:

* F32 GGUF logits vs transformers float32 on text chat prompts (max abs diff, top-1 agreement);
* mmproj image embeddings vs the torch vision tower, at sizes that are multiples of 28 px and at
  sizes that are not (llama.cpp letterboxes those, transformers stretches them);
* held-out answers through llama.cpp's mtmd path per quant: agreement with the float model's
  answers (transformers, float32) and accuracy against the true answers; file sizes.

Results go to benchmarks/results/gguf-parity-NAME.json and .md.

    .venv/bin/python benchmarks/gguf_parity.py                   # qwen2-vl-tiny, 500 questions
    .venv/bin/python benchmarks/gguf_parity.py --limit 1000
"""

from __future__ import annotations

import argparse
import json
import tempfile
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
QUANTS = ("f32", "f16", "q8_0", "q5_k_m", "q4_k_m", "q4_0")
SIZES = ((112, 112), (168, 252), (420, 280), (130, 200), (300, 300))   # (height, width); last two unaligned


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen2-vl-tiny")
    parser.add_argument("--limit", type=int, default=500, help="held-out questions (all types, in order)")
    args = parser.parse_args()

    from qtool import machine
    from qtool.export import gguf_validate
    from qtool.export.gguf_export import export_gguf
    from qtool.export.onnx_validate import synthetic_image
    from qtool.infer import answer, load_model
    from qtool.models.checkpoint import resolve_model
    from recipes.tiny_model import splits

    path = resolve_model(args.model)
    items = splits.items("test", scenes=-(-args.limit // 5))[: args.limit]
    images = [splits.image("test", i.scene) for i in items]
    questions = [i.question for i in items]
    model, processor = load_model(path, "float32")
    reference = answer(model, processor, images, questions)
    del model
    with tempfile.TemporaryDirectory(prefix="qtool-gguf-") as tmp:
        out = Path(tmp) / "gguf"
        export = export_gguf(path, out, quants=QUANTS)
        logits = gguf_validate.text_logits(out, "f32", path, questions[:25])
        vision = gguf_validate.vision_embeddings(out, path, [synthetic_image(h, w, i) for i, (h, w) in enumerate(SIZES)])
        rows = []
        for quant in QUANTS:
            got = gguf_validate.answers(out, quant, path, images, questions, reference=reference)
            correct = sum(a == i.answer for a, i in zip(got["answers"], items))
            rows.append({"quant": quant, "file_mib": export.sizes[export.files[quant]] / 2**20,
                         "agreement_with_float": got["agreement"], "accuracy": correct / len(items)})
    float_accuracy = sum(a == i.answer for a, i in zip(reference, items)) / len(items)
    data = {"model": str(path), "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": machine.info(), "questions": len(items), "float_accuracy": float_accuracy,
            "text_logits_f32": logits, "mmproj_f16": vision, "quants": rows,
            "tokenizer_check": export.tokenizer_check, "mmproj_mib": export.sizes[export.mmproj] / 2**20}
    stem = f"gguf-parity-{path.name}"
    (RESULTS / f"{stem}.json").write_text(json.dumps(data, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text(markdown(data))
    print(markdown(data))


def markdown(d: dict) -> str:
    lg = d["text_logits_f32"]
    lines = [
        f"# GGUF parity: {Path(d['model']).name}", "",
        f"{d['date']}, {d['machine'].get('cpu', '')}, llama-cpp-python {d['machine'].get('versions', {}).get('llama_cpp_python', '')}."
        f" {d['questions']} held-out questions; float = transformers float32 (accuracy {100 * d['float_accuracy']:.1f}%).",
        "",
        f"- F32 GGUF logits vs transformers float32: max abs diff {lg['max_abs']:.2e} (largest logit {lg['logit_scale']:.1f}),"
        f" top-1 agreement {100 * lg['top1_agreement']:.2f}% over {lg['positions']} positions of {lg['prompts']} chat prompts.",
        f"- Tokenizer: llama.cpp (pre-tokenizer `{d['tokenizer_check']['pre_tokenizer']}`) reproduced the model's"
        f" tokenizer on {d['tokenizer_check']['texts']} probe texts ({d['tokenizer_check']['mismatches']} mismatches).",
        "", "## mmproj (F16) image embeddings vs the torch vision tower", "",
        "| image (w x h) | tokens | max abs | rel L2 |", "|---|---|---|---|",
    ]
    for r in d["mmproj_f16"]["images"]:
        aligned = r["size"][0] % 28 == 0 and r["size"][1] % 28 == 0
        note = "" if aligned else " (resized: not a multiple of 28 px)"
        lines.append(f"| {r['size'][0]} x {r['size'][1]}{note} | {r['tokens']} | {r.get('max_abs', float('nan')):.2e} |"
                     f" {r.get('rel_l2', float('nan')):.2e} |")
    lines += ["", "A resized image matches only when the 28-px grid keeps its aspect ratio: otherwise llama.cpp"
              " letterboxes it (pads) where transformers stretches it, so the same grid holds different pixels."
              " Resize images to multiples of 28 px before either runtime to get identical embeddings."]
    lines += ["", f"## Held-out answers through llama.cpp (mtmd), mmproj F16 ({d['mmproj_mib']:.1f} MiB)", "",
              "| quant | file MiB | agreement with float | accuracy |", "|---|---|---|---|"]
    for r in d["quants"]:
        lines.append(f"| {r['quant']} | {r['file_mib']:.1f} | {100 * r['agreement_with_float']:.1f}% |"
                     f" {100 * r['accuracy']:.1f}% |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
