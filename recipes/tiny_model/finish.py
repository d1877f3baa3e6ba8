"""Publish the trained tiny model: bf16 weights, processor, held-out set and accuracy report.

    python -m recipes.tiny_model.finish [--work training/qwen2-vl-tiny-stage4]

Weights are stored in bfloat16, as Qwen publishes its models, so the float
reference of every later comparison is exactly what ships.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path

import torch

from qtool import paths
from recipes import ROOT
from recipes.tiny_model import heldout
from recipes.tiny_model.train import Run, evaluate, parse_args

MODEL_DIR = paths.ASSETS / "qwen2-vl-tiny"
HELDOUT_DIR = paths.ASSETS / "qwen2-vl-tiny-heldout"
REPORT_DIR = ROOT / "training"  # training log and final accuracy, committed


def tensors_sha256(state: dict) -> str:
    """One hash over a state dict (names, dtypes, shapes, bytes): it identifies the weights training/ no longer
    keeps, so the shipped model can be checked against the stage it was published from."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].contiguous()
        h.update(f"{name} {t.dtype} {tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--work", type=Path, default=REPORT_DIR / "qwen2-vl-tiny-stage4", help="the last stage's folder")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    run = Run(args.work, parse_args(["--work", str(args.work)]))
    run.model.to(torch.bfloat16)
    tmp = MODEL_DIR.with_name(MODEL_DIR.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    run.export(tmp)
    shutil.rmtree(MODEL_DIR, ignore_errors=True)
    tmp.rename(MODEL_DIR)
    heldout.write(HELDOUT_DIR)
    accuracy = evaluate(run.model, run.processor, heldout.SCENES)
    report = {"step": run.step, "dtype": "bfloat16", "questions_per_type": heldout.SCENES, "accuracy": accuracy,
              "stage": args.work.name, "weights_sha256": tensors_sha256(run.model.state_dict())}
    REPORT_DIR.mkdir(exist_ok=True)
    (REPORT_DIR / "accuracy.json").write_text(json.dumps(report, indent=2) + "\n")
    shutil.copy2(args.work / "train_log.jsonl", REPORT_DIR / "train_log.jsonl")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
