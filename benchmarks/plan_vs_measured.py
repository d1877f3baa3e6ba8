"""`qtool plan`'s predicted peak memory against the peaks `qtool bench` measured, per profile and length.

Reads bench results (bench.json) and predicts each record's peak with the same inputs: image tokens,
context = input tokens + generated tokens, the prompt's text tokens, device cpu (the plan then adds
the runtime term, measured per profile on a one-layer probe model: `qtool.bench.runtime_probe`).
Only torch profiles: plan does not model llama.cpp or ONNX Runtime.

    .venv/bin/python benchmarks/plan_vs_measured.py \\
        benchmarks/results/qwen2-vl-tiny-cpu=qwen2-vl-tiny benchmarks/results/qwen2-vl-2b-random-cpu=qwen2-vl-2b

Each argument is RESULTS_DIR=MODEL, MODEL a checkpoint, bundled name or real shape name (a random
checkpoint has its shape's config). Results: benchmarks/results/plan-vs-measured.{json,md}, or
plan-vs-measured-NAME.{json,md} with --name NAME first.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
TOLERANCE = 0.10


def compare(results: Path, model: str) -> list[dict]:
    from qtool import artifacts, profiles
    from qtool.bench.plan import model_config, plan

    data = json.loads((results / "bench.json").read_text())
    config, image_tokens = model_config(model), data["settings"]["image_tokens"]
    rows = []
    for record in data["records"]:
        profile = profiles.load_profile(record["profile"])
        if artifacts.kind_of(profile).name in ("gguf", "onnx-vision"):   # plan models torch loads only
            continue
        for length in record["lengths"]:
            context = record["input_tokens"] + length["gen"]
            row = plan(config, [record["profile"]], budget=None, image_tokens=image_tokens, context=context,
                       prompt_tokens=record["input_tokens"] - image_tokens, device="cpu")[0]
            measured = length["peak_memory_mb"] * 2**20
            rows.append({"results": results.name, "model": model, "profile": record["profile"], "gen": length["gen"],
                         "predicted_mib": round(row.total_bytes / 2**20, 1), "measured_mib": round(measured / 2**20, 1),
                         "error": round(row.total_bytes / measured - 1, 4),
                         "weights_mib": round(row.weights_bytes / 2**20, 1),
                         "runtime_mib": round(row.runtime_bytes / 2**20, 1),
                         "load_transient_mib": round(row.load_bytes / 2**20, 1), "machine": data["machine"]["cpu"]})
    return rows


def main() -> None:
    from qtool import machine

    args, suffix = sys.argv[1:], ""
    if args[:1] == ["--name"]:
        suffix, args = f"-{args[1]}", args[2:]
    rows = []
    for arg in args:
        folder, model = arg.split("=", 1)
        rows += compare(Path(folder), model)
    worst = max(abs(r["error"]) for r in rows)
    record = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "tolerance": TOLERANCE,
              "worst_abs_error": worst, "within_tolerance": worst <= TOLERANCE, "machine": machine.info(), "rows": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"plan-vs-measured{suffix}.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = ["# `qtool plan` vs measured peak memory (CPU, peak RSS of each profile's bench process)", "",
             f"{record['date']}. Tolerance {TOLERANCE:.0%}; worst |error| {worst:.1%}. Predictions made on "
             f"{machine.label(record['machine'])}; the runtime term is the peak RSS, less its weights, of a fresh process "
             "that loads and runs a one-layer random model in the profile as the bench worker does "
             "(`qtool.bench.runtime_probe`); the load term is the "
             "cast or kernel repack that holds two copies at load (`qtool.bench.plan.load_transient_bytes`).", "",
             "| results | profile | gen | predicted MiB | measured MiB | error | weights MiB | runtime MiB | load MiB |",
             "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['results']} | {r['profile']} | {r['gen']} | {r['predicted_mib']} | {r['measured_mib']} | "
              f"{r['error']:+.1%} | {r['weights_mib']} | {r['runtime_mib']} | {r['load_transient_mib']} |" for r in rows]
    (RESULTS / f"plan-vs-measured{suffix}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
