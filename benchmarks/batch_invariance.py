"""Greedy answers of the tiny model at batch 1 and batch 64 over the whole test split: identical or not.

    python benchmarks/batch_invariance.py [--out benchmarks/results/batch-invariance-qwen2-vl-tiny.json]

tests/test_tiny.py compares the first 48 questions; this compares all 2000 (about 20 minutes at batch 1 on 2 cores).
"""

import argparse
import json
import time
from pathlib import Path

import torch

from qtool import infer, machine, paths
from recipes.tiny_model import splits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/batch-invariance-qwen2-vl-tiny.json"))
    ap.add_argument("--batches", default="64,1")
    args = ap.parse_args()
    model, processor = infer.load_model(paths.ASSETS / "qwen2-vl-tiny")
    items = splits.items("test")
    images = {i: splits.image("test", i) for i in range(splits.SCENES)}
    answers, seconds = {}, {}
    for size in map(int, args.batches.split(",")):
        t = time.perf_counter()
        answers[size] = infer.answer(model, processor, [images[it.scene] for it in items],
                                     [it.question for it in items], batch_size=size)
        seconds[size] = round(time.perf_counter() - t, 1)
        print(f"batch {size}: {seconds[size]} s", flush=True)
    sizes = list(answers)
    differ = [{"id": it.id, **{f"batch {s}": answers[s][i] for s in sizes}, "gold": it.answer}
              for i, it in enumerate(items) if len({answers[s][i] for s in sizes}) > 1]
    record = {"questions": len(items), "batch_sizes": sizes, "seconds": seconds, "differing": differ,
              "accuracy": {s: sum(a == it.answer for a, it in zip(answers[s], items)) / len(items) for s in sizes},
              "torch_threads": torch.get_num_threads(), "machine": machine.info()}
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"{len(differ)} of {len(items)} answers differ -> {args.out}")


if __name__ == "__main__":
    main()
