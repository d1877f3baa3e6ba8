"""Benchmark the ONNX vision exports of a model: size, error, held-out agreement, CPU latency.

Exports MODEL in fp32, fp16, int8 and int4 (``qtool export onnx``), then for each precision:

* file size on disk;
* relative L2 / max abs error vs the stock torch tower (the export's validation.json, plus the
  mean over the held-out images);
* held-out answers with ONNX Runtime vision embeddings + the torch language model, compared with
  the all-torch answers (agreement) and with the reference answers (accuracy);
* vision-tower latency at a few image sizes, ONNX Runtime CPU vs torch (stock module, float32),
  both on the same number of threads, median of several runs.

Results go to benchmarks/results/onnx_vision.json and .md.

    .venv/bin/python benchmarks/onnx_vision.py                      # whole held-out set
    .venv/bin/python benchmarks/onnx_vision.py --limit 500 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
LATENCY_SIZES = ((112, 112), (448, 448), (896, 896))   # (height, width) in pixels


def machine(threads: int) -> dict:
    import onnx
    import onnxruntime
    import psutil
    import torch
    import transformers

    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return {
        "cpu": cpu, "cores": os.cpu_count(), "threads_used": threads, "platform": platform.platform(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1), "python": platform.python_version(),
        "torch": torch.__version__, "transformers": transformers.__version__, "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__, "numpy": np.__version__,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - start))
    return round(statistics.median(times), 2)


def latency(visual, folder: Path, precisions, threads: int, repeats: int) -> list[dict]:
    import torch

    from qtool.export.onnx_validate import case_images, torch_embeds
    from qtool.runtime.vision import VisionEncoder, preprocess

    encoders = {p: VisionEncoder(folder, p, threads=threads) for p in precisions}
    config = encoders["fp32"].config
    rows = []
    for h, w in LATENCY_SIZES:
        patches, grid = preprocess(case_images(((h, w),), seed=5)[0], config)
        torch.set_num_threads(threads)
        row = {"image": f"{h}x{w}", "patches": int(patches.shape[0]),
               "torch_ms": median_ms(lambda: torch_embeds(visual, patches, [grid]), repeats)}
        for p, enc in encoders.items():
            row[f"ort_{p}_ms"] = median_ms(lambda enc=enc: enc.run(patches, [grid]), repeats)
        rows.append(row)
    return rows


def heldout_errors(visual, folder: Path, precisions, questions) -> dict:
    from PIL import Image

    from qtool.export.onnx_validate import max_abs, rel_l2, torch_embeds
    from qtool.runtime.vision import VisionEncoder, preprocess

    encoders = {p: VisionEncoder(folder, p) for p in precisions}
    errors = {p: [] for p in precisions}
    for path in dict.fromkeys(q.image for q in questions):
        patches, grid = preprocess(Image.open(path), encoders["fp32"].config)
        ref = torch_embeds(visual, patches, [grid])
        for p, enc in encoders.items():
            out = enc.run(patches, [grid])
            errors[p].append((rel_l2(out, ref), max_abs(out, ref)))
    return {p: {"images": len(v), "mean_rel_l2": float(np.mean([e[0] for e in v])),
                "max_rel_l2": float(np.max([e[0] for e in v])), "max_abs": float(np.max([e[1] for e in v]))}
            for p, v in errors.items()}


def run(model: str, limit: int | None, threads: int, repeats: int, keep: Path | None) -> dict:
    import torch
    from transformers import AutoConfig

    from qtool import infer
    from qtool.calibration.images import load_image
    from qtool.eval.agreement import agreement
    from qtool.eval.dataset import TEST_SET, load_vqa
    from qtool.export.onnx_vision import export_onnx
    from qtool.export.vision_tower import load_vision_tower
    from qtool.models.checkpoint import resolve_model
    from qtool.runtime import onnx_io as io
    from qtool.runtime.vision import VisionEncoder

    torch.set_num_threads(threads)
    precisions = tuple(io.PRECISIONS)
    info = machine(threads)
    with tempfile.TemporaryDirectory() as tmp:
        folder = keep or Path(tmp) / "onnx"
        start = time.perf_counter()
        result = export_onnx(model, folder, precisions=precisions, force=True)
        export_s = round(time.perf_counter() - start, 1)
        path = resolve_model(model)
        visual = load_vision_tower(path, AutoConfig.from_pretrained(path))
        lm, processor = infer.load_model(path, "float32")
        questions = load_vqa(TEST_SET, limit)
        images = {p: load_image(p) for p in dict.fromkeys(q.image for q in questions)}
        asked = ([images[q.image] for q in questions], [q.question for q in questions])
        start = time.perf_counter()
        reference = infer.answer(lm, processor, *asked)
        torch_s = round(time.perf_counter() - start, 1)
        rows = {}
        for p in precisions:
            start = time.perf_counter()
            answers = infer.answer(lm, processor, *asked, encoder=VisionEncoder(folder, p, threads=threads))
            agree = agreement(questions, reference, answers)
            rows[p] = {"file": io.PRECISIONS[p], "bytes": result.sizes[p],
                       "validation_worst": result.validation["worst"][p], **agree.to_dict(),
                       "answer_s": round(time.perf_counter() - start, 1)}
        errors = heldout_errors(visual, folder, precisions, questions)
        for p in precisions:
            rows[p]["heldout_images"] = errors[p]
        lat = latency(visual, folder, precisions, threads, repeats)
    return {"model": model, "model_type": result.model_type, "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": info, "questions": len(questions), "question_set": str(TEST_SET),
            "export_s": export_s, "torch_answer_s": torch_s, "validation_cases": result.validation["cases"],
            "precisions": rows, "latency": lat}


def markdown(r: dict) -> str:
    m = r["machine"]
    lines = [
        f"# ONNX vision tower: {r['model']} ({r['model_type']})", "",
        f"{r['when']}. CPU: {m['cpu']}, {m['cores']} cores, {m['threads_used']} thread(s) for both torch and ORT; "
        f"load average at start {m['load_average_at_start']} (above 1: other jobs shared the machine, latency is noisy). "
        f"torch {m['torch']}, transformers {m['transformers']}, onnx {m['onnx']}, onnxruntime {m['onnxruntime']}.", "",
        f"Held-out questions: {r['questions']} ({r['question_set']}); answers with ORT vision embeddings + the "
        "torch language model vs the all-torch path (greedy). Errors vs the stock torch tower in float32.", "",
        "| precision | size (KiB) | worst rel L2 (validation) | mean rel L2 (held-out images) | agreement | "
        "accuracy ORT | accuracy torch |",
        "|---|---|---|---|---|---|---|",
    ]
    for p, row in r["precisions"].items():
        lines.append(f"| {p} | {row['bytes'] / 1024:.0f} | {row['validation_worst']['rel_l2']:.2e} | "
                     f"{row['heldout_images']['mean_rel_l2']:.2e} | {row['rate']:.2%} ({row['same']}/{row['questions']}) | "
                     f"{row['accuracy_candidate']:.2%} | {row['accuracy_reference']:.2%} |")
    lines += ["", "Relative L2 per validation case (images the exporter never saw):", "",
              "| case | patches | " + " | ".join(r["precisions"]) + " |", "|---|---|" + "---|" * len(r["precisions"])]
    for case in r["validation_cases"]:
        lines.append(f"| {case['case']} | {case['patches']} | " +
                     " | ".join(f"{case['precisions'][p]['rel_l2']:.2e}" for p in r["precisions"]) + " |")
    lines += ["", "Vision-tower latency, median ms (preprocessing excluded):", "",
              "| image | patches | torch fp32 | " + " | ".join(f"ORT {p}" for p in r["precisions"]) + " |",
              "|---|---|---|" + "---|" * len(r["precisions"])]
    for row in r["latency"]:
        lines.append(f"| {row['image']} | {row['patches']} | {row['torch_ms']} | " +
                     " | ".join(str(row[f'ort_{p}_ms']) for p in r["precisions"]) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2-vl-tiny")
    ap.add_argument("--limit", type=int, help="first N held-out questions (default: all)")
    ap.add_argument("--threads", type=int, default=1, help="threads for torch and ORT alike")
    ap.add_argument("--repeats", type=int, default=10, help="timed runs per latency cell")
    ap.add_argument("--keep", type=Path, help="export into this folder and keep it")
    args = ap.parse_args(argv)
    report = run(args.model, args.limit, args.threads, args.repeats, args.keep)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "onnx_vision.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "onnx_vision.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
