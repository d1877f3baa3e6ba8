"""Diagnostic: a GPTQ job straight through GPTQModel, without qtool's per-layer checkpoints.

Compares against `qtool quantize` (whose qtool.json records peak_rss_mb) to show what the checkpoints cost
in memory and time. Nothing is saved: it stops after GPTQModel's quantize().

    GPTQMODEL_CPU_WORKERS=2 .venv/bin/python benchmarks/quantize_without_checkpoints.py /tmp/q2b/qwen2-vl-2b-random \\
        [--profile gptq-int4] [--samples 4]

Session 5 ran this on the 2B random shape and sampled the process's VmHWM from /proc while it ran (4.39 GB at
layer 27 of 28, ~11 min); the final line printed here is the same peak from getrusage.
"""

import argparse
import resource
import time
from pathlib import Path

import torch

from qtool import paths, profiles
from qtool.calibration.records import load_records
from qtool.calibration.samples import conversations, pick
from qtool.models.checkpoint import inspect_checkpoint
from qtool.quantization.engine import engine_config


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path)
    ap.add_argument("--profile", default="gptq-int4")
    ap.add_argument("--samples", type=int, default=4)
    args = ap.parse_args()
    from gptqmodel import GPTQModel

    info = inspect_checkpoint(args.model)
    profile = profiles.load_profile(args.profile)
    calib = conversations(pick(load_records(paths.CALIB_DATA), args.samples), info.adapter)
    t = time.time()
    model = GPTQModel.load(str(args.model), engine_config(profile, "cpu"), dtype=torch.bfloat16)
    model.quantize(calib, batch_size=1)
    print(f"wall {time.time() - t:.0f} s, peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")


if __name__ == "__main__":
    main()
