"""Where decode time goes, per profile: torch.profiler over the decode steps of one generate.

The bench says how fast each precision decodes; this says why. Each profile runs in its own fresh
process (the artifact comes from the same cache `qtool bench` uses), warms up, then profiles one
generate from its first decode step to its last (the prefill is excluded). The table lists the ops
with the most self CPU time and what share of the decode time each takes.

--modes also times what transformers offers against the overhead outside the kernels, each in the
same process after its own warm-up: `dynamic` (generate's default cache), `static` (a preallocated
KV cache, `cache_implementation="static"`), `compiled` (static cache plus the decode step compiled
by torch.compile, which transformers does on CPU only when asked). Each mode's tokens are compared
with the dynamic mode's.

    .venv/bin/python benchmarks/decode_profile.py MODEL --profiles bf16,fp32,gptq-int4 [--gen 32] \\
        [--samples 4] [--modes dynamic,static,compiled] [--name qwen2-vl-2b-random-cpu]

Results: benchmarks/results/decode-profile-NAME.{json,md}. Random weights give the same timings
as real ones (nothing here depends on weight values).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
TOP = 10


def profile_decode(spec: dict) -> dict:
    """In a fresh process: load the artifact, warm up, profile the decode steps of one generate."""
    import torch
    from transformers import LogitsProcessor, LogitsProcessorList

    from qtool.bench.worker import DTYPES, load_model, prompt_inputs
    from qtool.kernels import kernel_name

    model, processor = load_model(spec, DTYPES[spec["dtype"]], "cpu")
    enc, _ = prompt_inputs(processor, spec["image_tokens"], "cpu")
    profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])

    class StartAfterPrefill(LogitsProcessor):
        """Called once per generated token: the first call comes right after the prefill."""

        def __init__(self, profiling: bool = False):
            self.profiling, self.started = profiling, None

        def __call__(self, input_ids, scores):
            if self.started is None:
                if self.profiling:
                    profiler.start()
                self.started = time.perf_counter()
            return scores

    def generate(tokens: int, clock: StartAfterPrefill, **kwargs) -> list[int]:
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False,
                                 logits_processor=LogitsProcessorList([clock]),
                                 pad_token_id=processor.tokenizer.pad_token_id, **kwargs)
        return out[0, enc["input_ids"].shape[1]:].tolist()

    steps = spec["gen"] - 1
    modes, reference = {}, None
    for mode in spec["modes"]:
        kwargs = _mode_kwargs(mode)
        t = time.perf_counter()
        generate(8, StartAfterPrefill(), **kwargs)   # warm-up (and compilation)
        warmup_s = time.perf_counter() - t
        timed = []
        for _ in range(3):
            clock = StartAfterPrefill()
            tokens = generate(spec["gen"], clock, **kwargs)
            timed.append(1000 * (time.perf_counter() - clock.started) / steps)
        reference = tokens if reference is None else reference
        modes[mode] = {"warmup_s": round(warmup_s, 2), "ms_per_token": round(sorted(timed)[1], 2),
                       "ms_per_token_runs": [round(x, 2) for x in timed], "same_tokens": tokens == reference}
    clock = StartAfterPrefill(profiling=True)
    generate(spec["gen"], clock)
    profiler.stop()
    decode_s = time.perf_counter() - clock.started
    ops = sorted(profiler.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    return {
        "profile": spec["profile"], "kernel": kernel_name(model), "threads": torch.get_num_threads(),
        "modes": modes,
        "decode_steps": steps, "decode_ms_per_token": round(1000 * decode_s / steps, 2),
        # the rest is Python: generate's loop, module calls, the profiler itself
        "ops_share": round(sum(e.self_cpu_time_total for e in ops) / 1e6 / decode_s, 4),
        "ops": [{"op": e.key, "calls_per_token": round(e.count / steps, 1),
                 "ms_per_token": round(e.self_cpu_time_total / 1000 / steps, 3),
                 "share": round(e.self_cpu_time_total / 1e6 / decode_s, 4)} for e in ops[:TOP]],
    }


def _mode_kwargs(mode: str) -> dict:
    """generate() arguments of a decode mode (see the module docstring)."""
    if mode == "dynamic":
        return {}
    if mode == "static":
        return {"cache_implementation": "static"}
    from transformers import CompileConfig

    compile_config = CompileConfig(mode="default")
    compile_config._compile_all_devices = True    # transformers' documented switch for compiling off-GPU
    return {"cache_implementation": "static", "compile_config": compile_config}


def run_profile(model: Path, name: str, args) -> dict:
    from qtool import artifacts, profiles
    from qtool.models.checkpoint import checkpoint_of

    profile = artifacts.with_samples(profiles.load_profile(name), args.samples)
    path = artifacts.artifact_for(checkpoint_of(model), profile)
    spec = {"path": str(path), "profile": name, "dtype": getattr(profile, "dtype", "bfloat16"),
            "image_tokens": args.image_tokens, "gen": args.gen,
            "modes": ["dynamic"] + [m for m in args.modes.split(",") if m != "dynamic"]}   # dynamic: the reference
    with tempfile.TemporaryDirectory(prefix="qtool-decode-profile-") as tmp:
        spec_file, out = Path(tmp) / "spec.json", Path(tmp) / "out.json"
        spec_file.write_text(json.dumps(spec))
        subprocess.run([sys.executable, __file__, "--child", str(spec_file), str(out)], check=True)
        return json.loads(out.read_text())


def markdown(record: dict) -> str:
    lines = [f"# Where decode time goes: {record['model']}", "",
             f"{record['machine']['cpu']}, {record['machine']['cores']} cores; torch.profiler, self CPU time over "
             f"{record['gen'] - 1} decode steps after a {record['image_tokens']}-token image + prompt prefill. "
             "Random weights where the model is a random shape (timings do not depend on weight values). "
             "The profiler's own overhead makes ms/token higher than `qtool bench` reports; compare shares.", ""]
    modes = [m for m in ("dynamic", "static", "compiled") if any(m in r.get("modes", {}) for r in record["profiles"])]
    if modes != ["dynamic"]:
        lines += ["## Decode modes, without the profiler", "",
                  "ms/token: median of 3 generates; vs dynamic: its speed-up; same tokens: the mode's greedy tokens "
                  "equal the dynamic cache's; warm-up s: the first generate (compilation included).", "",
                  "| profile | kernel | " + " | ".join(f"{m} ms/token | vs dynamic | same tokens | warm-up s"
                                                        for m in modes) + " |",
                  "|---|---|" + "---|---|---|---|" * len(modes)]
        for r in record["profiles"]:
            base = r["modes"]["dynamic"]["ms_per_token"]
            cells = [f"{x['ms_per_token']} | {base / x['ms_per_token']:.2f}x | {'yes' if x['same_tokens'] else 'NO'} | "
                     f"{x['warmup_s']}" for x in (r["modes"][m] for m in modes)]
            lines.append(f"| {r['profile']} | {r['kernel']} | " + " | ".join(cells) + " |")
        lines.append("")
    for r in record["profiles"]:
        lines += [f"## {r['profile']} ({r['kernel']}, {r['threads']} threads): {r['decode_ms_per_token']} ms/token",
                  "", f"Torch ops take {100 * r['ops_share']:.0f}% of the decode time; the rest is Python "
                  "(generate's loop, module calls, the profiler).", "", "| op | calls/token | ms/token | share of decode |", "|---|---|---|---|"]
        lines += [f"| `{o['op']}` | {o['calls_per_token']} | {o['ms_per_token']} | {100 * o['share']:.1f}% |"
                  for o in r["ops"]]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        spec = json.loads(Path(sys.argv[2]).read_text())
        Path(sys.argv[3]).write_text(json.dumps(profile_decode(spec)))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path)
    ap.add_argument("--profiles", default="bf16,fp32,gptq-int8,gptq-int4,awq-int4")
    ap.add_argument("--gen", type=int, default=32)
    ap.add_argument("--image-tokens", type=int, default=64)
    ap.add_argument("--samples", type=int, default=None)
    ap.add_argument("--modes", default="dynamic", help="decode modes timed: dynamic,static,compiled")
    ap.add_argument("--name", default=None)
    args = ap.parse_args()
    from qtool import machine

    record = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "model": args.model.name,
              "gen": args.gen, "image_tokens": args.image_tokens, "machine": machine.info(),
              "profiles": [run_profile(args.model, name, args) for name in args.profiles.split(",")]}
    name = args.name or args.model.name
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"decode-profile-{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    (RESULTS / f"decode-profile-{name}.md").write_text(markdown(record) + "\n")
    print(markdown(record))


if __name__ == "__main__":
    main()
