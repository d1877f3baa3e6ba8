"""Quantize a real-size random shape on this machine; record wall time and peak RSS.

Shows that quantization memory scales with one decoder layer plus calibration
activations, not with the model: the 7B shape is ~16 GB in bf16 and this
machine has 24 GiB. Random weights: time and memory only.

    GPTQMODEL_CPU_WORKERS=2 .venv/bin/python benchmarks/quantize_large.py --shape qwen2-vl-7b --work /tmp/q7b --samples 8

(the command of the recorded run; --samples defaults to 32).

The quantize run is a child process (``qtool quantize``), so ru_maxrss from wait4 is its peak alone.
Interrupted or stopped (Ctrl-C stops it cleanly at the next layer)? Re-run the same command: it passes
--resume, continuing from the last finished layer, and the record keeps every attempt (total wall time,
peak over all of them).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from qtool.bench.measure import proc_status_mib

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
    # Ctrl-C reaches the child too: it stops at the next layer boundary and this process writes the record.
    signal.signal(signal.SIGINT, lambda *_: None)
    with tempfile.TemporaryFile("w+") as stdout_file:
        proc = subprocess.Popen(cmd, stdout=stdout_file, text=True)
        status, usage, rss_timeline = wait_sampling_rss(proc.pid, t)
        stdout_file.seek(0)
        stdout = stdout_file.read()
    code = os.waitstatus_to_exitcode(status)
    attempt = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "exit_code": code,
        "wall_s": round(time.time() - t, 1), "peak_rss_gib": round(usage.ru_maxrss / 2**20, 2),
        "rss_gib_every_30s": rss_timeline,
    }
    path = RESULTS / f"quantize_{args.shape}_{args.profile}_{args.device}.json"
    attempts = earlier_attempts(path, args) + [attempt]
    record = {
        "shape": args.shape, "profile": args.profile, "samples": args.samples, "device": args.device,
        "complete": code == 0, "attempts": len(attempts),
        "wall_s": round(sum(a["wall_s"] for a in attempts), 1),
        "peak_rss_gib": max(a["peak_rss_gib"] for a in attempts),
        "source_gib": round(sum(f.stat().st_size for f in model.glob("*.safetensors")) / 2**30, 2),
        "result": json.loads(stdout) if code == 0 else None, "machine": machine.info(),
        "note": "random weights: wall time and memory only; wall_s and peak_rss_gib cover every attempt",
        "attempt_log": attempts,
    }
    RESULTS.mkdir(exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({k: record[k] for k in ("complete", "attempts", "wall_s", "peak_rss_gib", "source_gib")}))


def earlier_attempts(path: Path, args) -> list[dict]:
    """The stopped attempts of this same job that the resumed run continues, so the record covers the whole job."""
    try:
        previous = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    same_job = all(previous.get(k) == getattr(args, k) for k in ("shape", "profile", "samples", "device"))
    if not same_job or previous.get("complete", previous.get("exit_status") == 0):
        return []
    if "attempt_log" in previous:
        return previous["attempt_log"]
    # a record written before attempts were kept: one stopped attempt (exit_status is the raw wait4 status)
    return [{k: previous[k] for k in ("date", "exit_status", "wall_s", "peak_rss_gib", "rss_gib_every_30s")
             if k in previous}]


def wait_sampling_rss(pid: int, start: float, every_s: float = 30.0):
    """Wait for ``pid``; return its exit status, rusage and its resident set size sampled over time,
    which shows whether memory stays flat across layers (ru_maxrss alone gives only the peak)."""
    timeline, next_sample = [], start
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            return status, usage, timeline
        if time.time() >= next_sample:
            rss = proc_status_mib("VmRSS", pid)
            if rss is not None:
                timeline.append([round(time.time() - start), round(rss / 1024, 2)])
            next_sample += every_s
        time.sleep(1)


if __name__ == "__main__":
    main()
