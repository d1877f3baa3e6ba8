"""Publish the trained tiny model: bf16 weights, processor, test set and accuracy report.

    python -m recipes.tiny_model.finish [--work training/qwen2-vl-tiny-stage4]
    python -m recipes.tiny_model.finish --measure    # the shipped weights on the current splits only

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
from qtool import infer
from recipes.tiny_model import splits
from recipes.tiny_model.train import Run, evaluate, parse_args

MODEL_DIR = paths.ASSETS / "qwen2-vl-tiny"
TEST_DIR = paths.ASSETS / "qwen2-vl-tiny-test"
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


def publish_accuracy(model, processor, step: int, stage: str) -> dict:
    """Write the test set and the accuracy report of ``model`` (bf16) on the test and validation splits."""
    splits.write(TEST_DIR, "test")
    report = {"step": step, "dtype": "bfloat16", "questions_per_type": splits.SCENES,
              "accuracy": evaluate(model, processor, splits.SCENES, split="test"),
              "validation_accuracy": evaluate(model, processor, splits.SCENES, split="validation"),
              "stage": stage, "weights_sha256": tensors_sha256(model.state_dict())}
    REPORT_DIR.mkdir(exist_ok=True)
    (REPORT_DIR / "accuracy.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--work", type=Path, default=REPORT_DIR / "qwen2-vl-tiny-stage4", help="the last stage's folder")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--measure", action="store_true", help="only re-measure the shipped weights")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.measure:
        published = json.loads((REPORT_DIR / "accuracy.json").read_text())
        model, processor = infer.load_model(MODEL_DIR)
        if tensors_sha256(model.state_dict()) != published["weights_sha256"]:
            raise SystemExit(f"{MODEL_DIR} is not the published stage's weights: run the recipe")
        print(json.dumps(publish_accuracy(model, processor, published["step"], published["stage"]), indent=2))
        return
    run = Run(args.work, parse_args(["--work", str(args.work)]))
    run.model.to(torch.bfloat16)
    tmp = MODEL_DIR.with_name(MODEL_DIR.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    run.export(tmp)
    shutil.rmtree(MODEL_DIR, ignore_errors=True)
    tmp.rename(MODEL_DIR)
    # measured as users load it: run.model.to(bfloat16) also cast the rotary inv_freq buffers, which loading a
    # bf16 checkpoint keeps in float32 (that alone moved one validation answer of 2000)
    model, processor = infer.load_model(MODEL_DIR)
    report = publish_accuracy(model, processor, run.step, args.work.name)
    shutil.copy2(args.work / "train_log.jsonl", REPORT_DIR / "train_log.jsonl")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
