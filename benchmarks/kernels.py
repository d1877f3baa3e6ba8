"""Which GPTQModel CPU kernel is fastest and correct, per format and bits: the record behind qtool/kernels.py.

    python benchmarks/kernels.py [--layers 4] [--work /tmp/qtool-kernels] [--out benchmarks/results/kernels-cpu]

A random checkpoint with the Qwen2-VL-2B shape cut to ``--layers`` decoder layers is quantized by qtool to
GPTQ-format Int4 and Int8 (round-to-nearest: the kernels read the same format whatever chose the values)
and to AWQ-Int4. Each (artifact, backend) is loaded by stock transformers in a fresh process with the
backend as ``quantization_config``'s loading attribute, and every quantized decoder linear is timed on one
token (decode) and on 64 tokens (prefill), going through all of them in turn so that no weight stays in the
caches. bf16 ``nn.Linear`` on the same layers is the baseline. Correctness: each kernel's outputs against
the format's reference kernel (``torch``: dequantize, then matmul), relative L2 error.
Random weights: speed only.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

CANDIDATES = {   # artifact -> backends loadable on CPU through transformers (GPTQConfig / AwqConfig)
    "gptq-int8": ["torch", "torch_int8"],
    "gptq-int4": ["torch", "torch_fused", "gptq_torch_aten", "gptq_torch_cpu_avx512"],
    "awq-int4": ["torch_awq", "torch_fused_awq", "auto"],
}
REFERENCE = {"gptq-int8": "torch", "gptq-int4": "torch", "awq-int4": "torch_awq"}
CHILD = """
import json, sys, time, statistics, torch
spec = json.loads(sys.argv[1])
torch.manual_seed(0)
torch.set_num_threads(spec["threads"])
from transformers import AutoModelForImageTextToText, AwqConfig, GPTQConfig
kwargs = {}
if spec["backend"]:
    cls = AwqConfig if spec["method"] == "awq" else GPTQConfig
    kwargs["quantization_config"] = cls(bits=spec["bits"], backend=spec["backend"])
model = AutoModelForImageTextToText.from_pretrained(spec["path"], dtype=torch.bfloat16, **kwargs).eval()
names = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
mods = [m for layer in model.model.language_model.layers for n, m in layer.named_modules() if n.split(".")[-1] in names]
result = {"kernel": type(mods[0]).__name__}
probe = {}
with torch.inference_mode():
    for tokens in (1, 64):
        xs = [torch.randn(1, tokens, m.in_features, dtype=torch.bfloat16, generator=torch.Generator().manual_seed(i))
              for i, m in enumerate(mods)]
        for m, x in zip(mods, xs):
            m(x)
        rounds = []
        for _ in range(spec["repeats"]):
            t = time.perf_counter()
            for m, x in zip(mods, xs):
                m(x)
            rounds.append(time.perf_counter() - t)
        result[f"ms_{tokens}"] = 1000 * statistics.median(rounds)
        probe[tokens] = [m(x).float() for m, x in zip(mods, xs[:7])]
torch.save(probe, spec["probe"])
print(json.dumps(result))
"""


def cut_shape(layers: int) -> str:
    from qtool.models import shapes

    base = shapes.SHAPES["qwen2-vl-2b"]
    name = f"qwen2-vl-2b-cut{layers}"
    shapes.SHAPES[name] = dataclasses.replace(base, name=name, text={**base.text, "num_hidden_layers": layers},
                                              listed=False)
    return name


def artifacts(work: Path, layers: int) -> dict[str, tuple[Path, str, int]]:
    from qtool import profiles
    from qtool.models.random_build import build_random
    from qtool.quantization import quantize

    source = work / "model"
    if not (source / "config.json").is_file():
        build_random(cut_shape(layers), source, force=True)
    wanted = {"gptq-int8": profiles.RTNProfile(name="rtn-int8", bits=8),
              "gptq-int4": profiles.RTNProfile(name="rtn-int4", bits=4),
              "awq-int4": profiles.AWQProfile(name="awq-int4", samples=2)}
    out = {"bf16": (source, "", 16)}
    for name, profile in wanted.items():
        path = work / name
        if not (path / "qtool.json").is_file():
            quantize(source, profile, out=path, force=True)
        out[name] = (path, "awq" if name.startswith("awq") else "gptq", profile.bits)
    return out


def measure(path: Path, method: str, bits: int, backend: str, probe: Path, threads: int, repeats: int) -> dict:
    spec = {"path": str(path), "method": method, "bits": bits, "backend": backend, "probe": str(probe),
            "threads": threads, "repeats": repeats}
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)], capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1][:300]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def rel_l2(a, b) -> float:
    import torch

    return max(float(torch.linalg.norm(x - y) / torch.linalg.norm(y)) for x, y in zip(a, b))


def main() -> None:
    import torch

    from qtool import machine

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--work", type=Path, default=Path("/tmp/qtool-kernels"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/kernels-cpu"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.build_only:
        artifacts(args.work, args.layers)
        return
    # built in a child: GPTQModel's worker threads keep spinning in the process that quantized, and would share
    # the cores with every timed child
    build = [sys.executable, __file__, "--build-only", "--work", str(args.work), "--layers", str(args.layers)]
    subprocess.run(build, check=True)
    built = artifacts(args.work, args.layers)
    bf16 = measure(built["bf16"][0], "", 16, "", args.work / "probe-bf16.pt", args.threads, args.repeats)
    rows = [{"artifact": "bf16", "backend": "-", **bf16}]
    for name, backends in CANDIDATES.items():
        path, method, bits = built[name]
        for backend in backends:
            probe = args.work / f"probe-{name}-{backend}.pt"
            rows.append({"artifact": name, "backend": backend,
                         **measure(path, method, bits, backend, probe, args.threads, args.repeats)})
        reference = torch.load(args.work / f"probe-{name}-{REFERENCE[name]}.pt")
        for row in rows:
            if row["artifact"] == name and "error" not in row:
                got = torch.load(args.work / f"probe-{name}-{row['backend']}.pt")
                row["rel_l2_vs_reference"] = max(rel_l2(got[t], reference[t]) for t in (1, 64))
    for row in rows:
        if "error" not in row:
            row["decode_speedup_vs_bf16"] = round(bf16["ms_1"] / row["ms_1"], 2)
            row["prefill_speedup_vs_bf16"] = round(bf16["ms_64"] / row["ms_64"], 2)
    record = {"when": time.strftime("%Y-%m-%d"), "machine": machine.info(), "layers": args.layers,
              "shape": "qwen2-vl-2b decoder linears (random weights: speed only)", "threads": args.threads,
              "repeats": args.repeats, "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "kernels.json").write_text(json.dumps(record, indent=2) + "\n")
    cols = ("artifact", "backend", "kernel", "ms_1", "decode_speedup_vs_bf16", "ms_64", "prefill_speedup_vs_bf16",
            "rel_l2_vs_reference", "error")
    lines = [f"# CPU kernels on the Qwen2-VL-2B decoder linears ({args.layers} layers, {args.threads} threads)", "",
             f"Machine: {machine.label(record['machine'])}, {record['when']}. ms_1 / ms_64: all "
             f"{7 * args.layers} quantized linears once, 1 / 64 tokens, median of {args.repeats}. "
             "Random weights: speed only; rel_l2 against the format's dequantize-then-matmul kernel.", "",
             "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |")
    (args.out / "kernels.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _fmt(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


if __name__ == "__main__":
    main()
