"""Quantize a real-size random shape on this machine; record wall time and peak RSS.

Shows that quantization memory scales with one decoder layer plus calibration
activations, not with the model: the 7B shape is ~16 GB in bf16 and this
machine has 24 GiB. Random weights: time and memory only.

    .venv/bin/python benchmarks/quantize_large.py --shape qwen2-vl-7b --work /tmp/qtool-large [--samples 32]

The quantize run is a child process (``qtool quantize``), so ru_maxrss from wait4 is its peak alone.
Interrupted? Re-run the same command: it passes --resume, continuing from the last finished layer.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="qwen2-vl-7b")
    ap.add_argument("--profile", default="gptq-int4")
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    from qtool import machine
    from qtool.models.random_build import build_random

    model = args.work / args.shape
    if not (model / "config.json").exists():
        build_random(args.shape, model, force=True)
    out = args.work / f"{args.shape}-{args.profile}"
    cmd = [sys.executable, "-m", "qtool", "--json", "quantize", str(model), "--profile", args.profile,
           "--samples", str(args.samples), "--device", args.device, "--out", str(out), "--force", "--resume"]
    t = time.time()
    with tempfile.TemporaryFile("w+") as stdout_file:
        proc = subprocess.Popen(cmd, stdout=stdout_file, text=True)
        status, usage, rss_timeline = wait_sampling_rss(proc.pid, t)
        stdout_file.seek(0)
        stdout = stdout_file.read()
    record = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "shape": args.shape,
        "profile": args.profile, "samples": args.samples, "device": args.device, "exit_status": status,
        "wall_s": round(time.time() - t, 1), "peak_rss_gib": round(usage.ru_maxrss / 2**20, 2),
        "source_gib": round(sum(f.stat().st_size for f in model.glob("*.safetensors")) / 2**30, 2),
        "result": json.loads(stdout) if status == 0 else None, "rss_gib_every_30s": rss_timeline,
        "machine": machine.info(),
        "note": "random weights: wall time and memory only",
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"quantize_{args.shape}_{args.profile}_{args.device}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({k: record[k] for k in ("wall_s", "peak_rss_gib", "source_gib", "exit_status")}))


def wait_sampling_rss(pid: int, start: float, every_s: float = 30.0):
    """Wait for ``pid``; return its exit status, rusage and its resident set size sampled over time,
    which shows whether memory stays flat across layers (ru_maxrss alone gives only the peak)."""
    timeline, next_sample = [], start
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            return status, usage, timeline
        if time.time() >= next_sample:
            try:
                status_text = Path(f"/proc/{pid}/status").read_text()
                kib = int(next(line for line in status_text.splitlines() if line.startswith("VmRSS")).split()[1])
                timeline.append([round(time.time() - start), round(kib / 2**20, 2)])
            except (OSError, StopIteration):
                pass
            next_sample += every_s
        time.sleep(1)


if __name__ == "__main__":
    main()
