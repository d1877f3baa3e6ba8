"""Does the calibration set's domain matter? GPTQ / AWQ vs round-to-nearest on the tiny model.

qtool's default calibration set (photos, charts, documents, signs, 224-px free-form shape scenes) is far
from the only inputs qwen2-vl-tiny ever sees (112-px grid scenes with short questions). GPTQ fits
each layer to the Hessian of its calibration activations and AWQ scales channels by calibration
activation magnitudes; fitted to the wrong inputs, both can do worse than plain rounding (as they did
on the earlier, 68.6% weights of the tiny model). This
script quantizes the tiny model with each calibration-using profile twice, once on the default set and
once on an in-domain set (scenes of the tiny task generator's own ``calib`` split, disjoint from
training and held-out, each record a multi-turn chat with one question of every type), plus RTN
and GPTQ with damp 0.01, and evaluates all of them with ``qtool eval`` on the same held-out questions.

    .venv/bin/python benchmarks/calibration_domain.py --work /tmp/qtool-calib-domain --limit 500

Results: benchmarks/results/calibration-domain-qwen2-vl-tiny.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
PROFILES = ("gptq-int4", "awq-int4", "gptq-int8")


def write_in_domain_set(folder: Path, scenes: int) -> Path:
    """``scenes`` records from the tiny generator's calib split: image + one Q/A turn per question type."""
    from recipes.tiny_model import tasks

    (folder / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(scenes):
        scene, questions = tasks.sample("calib", i)
        scene.render().save(folder / "images" / f"scene-{i:04d}.png")
        messages = []
        for q in questions:
            messages += [{"role": "user", "content": q.question}, {"role": "assistant", "content": q.answer}]
        lines.append(json.dumps({"id": f"scene-{i:04d}", "image": f"images/scene-{i:04d}.png", "messages": messages}))
    (folder / "records.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def damp_profile(folder: Path, damp: float) -> Path:
    path = folder / f"gptq-int4-damp{damp}.toml"
    path.write_text(f'method = "gptq"\nbits = 4\ngroup_size = 128\ndamp = {damp}\ndesc_act = false\n'
                    f'sym = true\ntrue_sequential = true\nsamples = 128\n')
    return path


def row(entry: dict, calib: str) -> dict:
    acc = entry["accuracy"]["overall"]
    return {"calibration": calib, "profile": entry["profile"], "accuracy": acc["accuracy"],
            "kl_answer_mean": entry["kl_answer"]["mean"], "kl_answer_p99": entry["kl_answer"]["p99"],
            "kl_all_text_mean": entry["kl_all_text"]["mean"], "top1_answer": entry["top1_answer"],
            "top1_all_text": entry["top1_all_text"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/qtool-calib-domain"))
    ap.add_argument("--limit", type=int, default=500)
    ap.add_argument("--scenes", type=int, default=128)
    ap.add_argument("--render", action="store_true", help="only rewrite the markdown from the JSON")
    args = ap.parse_args()
    if args.render:
        render(json.loads((RESULTS / "calibration-domain-qwen2-vl-tiny.json").read_text()))
        return
    from qtool import eval as qeval
    from qtool import machine, paths

    start = time.time()
    in_domain = write_in_domain_set(args.work / "tiny-calib", args.scenes)
    damp = damp_profile(args.work, 0.01)
    runs = {"calib_data (default)": (paths.CALIB_DATA, ["bf16", *PROFILES, "rtn-int4"]),
            "in-domain tiny scenes": (in_domain, ["bf16", *PROFILES, str(damp)])}
    rows = []
    for label, (calib, names) in runs.items():
        print(f"== {label}", flush=True)
        report = qeval.run("qwen2-vl-tiny", names, limit=args.limit, calib=calib, status=print)
        rows += [row(e, label) for e in report.rows if e["profile"] != "bf16" or not rows]
    record = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "questions": args.limit,
              "in_domain_scenes": args.scenes, "wall_s": round(time.time() - start), "machine": machine.info(),
              "rows": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "calibration-domain-qwen2-vl-tiny.json").write_text(json.dumps(record, indent=2) + "\n")
    render(record)


def render(record: dict) -> None:
    """The markdown table next to the JSON (``--render`` redoes it from the JSON alone)."""
    from qtool import machine

    lines = ["# Calibration domain: GPTQ / AWQ vs round-to-nearest on qwen2-vl-tiny", "",
             f"{record['date']}, {machine.label(record['machine'])}; {record['questions']} held-out questions; "
             f"in-domain set: {record['in_domain_scenes']} scenes of the tiny generator's calib split. "
             "KL(bf16 || quantized) and top-1 agreement teacher-forced on the gold answers (`qtool eval`).", "",
             "| calibration | profile | accuracy | KL answer mean | KL answer p99 | KL all text mean | top-1 answer | top-1 all text |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['calibration']} | {r['profile']} | {r['accuracy']:.1%} | {r['kl_answer_mean']:.2e} | "
              f"{r['kl_answer_p99']:.2e} | {r['kl_all_text_mean']:.2e} | {r['top1_answer']:.2%} | {r['top1_all_text']:.2%} |"
              for r in record["rows"]]
    (RESULTS / "calibration-domain-qwen2-vl-tiny.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
