"""Time `build_random` on real model shapes and record wall time and peak RSS.

Each build runs in its own child process, so its peak RSS (``wait4`` rusage, ru_maxrss) is the
build's alone. Results are merged into benchmarks/results/build_random.json, keyed by shape.

    .venv/bin/python benchmarks/build_random_shapes.py --out /tmp/qtool-random            # 2B and 7B
    .venv/bin/python benchmarks/build_random_shapes.py --out /tmp/qtool-random --shapes qwen2-vl-2b
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil

RESULTS = Path(__file__).resolve().parent / "results" / "build_random.json"
CHILD = """
import json, sys
from qtool.models.random_build import build_random
r = build_random(sys.argv[1], sys.argv[2], shard_bytes=int(sys.argv[3]), force=True)
print(json.dumps(r.to_dict()))
"""


def machine() -> dict:
    import torch
    import transformers

    return {
        "platform": platform.platform(), "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "torch": torch.__version__, "transformers": transformers.__version__,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def run_one(shape: str, out_root: Path, shard_bytes: int, keep: bool) -> dict:
    out = out_root / shape
    env = dict(os.environ, TORCH_LOGS="-all", PYTHONWARNINGS="ignore")
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        start = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-c", CHILD, shape, str(out), str(shard_bytes)],
                                 stdout=stdout, stderr=stderr, text=True, env=env)
        _, status, usage = os.wait4(child.pid, 0)  # this child's own rusage
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        stderr.seek(0)
        if child.returncode != 0:
            raise SystemExit(f"build of {shape} failed (exit {child.returncode}):\n{stderr.read()[-3000:]}")
        result = json.loads(stdout.read().strip().splitlines()[-1])
    record = {
        "shape": shape, "wall_s": round(wall, 1), "build_s": result["seconds"],
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),  # Linux: KiB
        "cpu_user_s": round(usage.ru_utime, 1), "cpu_sys_s": round(usage.ru_stime, 1),
        "bytes": result["bytes"], "gib": round(result["bytes"] / 2**30, 2), "params": result["params"],
        "shards": result["shards"], "shard_bytes": shard_bytes,
        "write_mib_per_s": round(result["bytes"] / 2**20 / result["seconds"], 1),
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if not keep:
        shutil.rmtree(out)
    return record


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="folder to build into (each shape in a subfolder)")
    ap.add_argument("--shapes", nargs="+", default=["qwen2-vl-2b", "qwen2-vl-7b"])
    ap.add_argument("--shard-mib", type=int, default=2048)
    ap.add_argument("--keep", action="store_true", help="keep the built checkpoints (default: delete)")
    ap.add_argument("--results", type=Path, default=RESULTS)
    args = ap.parse_args(argv)

    report = json.loads(args.results.read_text()) if args.results.is_file() else {"runs": {}}
    for shape in args.shapes:
        info = machine()
        record = run_one(shape, args.out, args.shard_mib * 2**20, args.keep)
        report["runs"][shape] = {**record, "machine": info}
        print(json.dumps(record), flush=True)
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
