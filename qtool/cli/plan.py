"""``qtool plan``: which precision fits on a given GPU, before downloading or quantizing anything."""

from __future__ import annotations

from pathlib import Path

import click

from qtool import fastest, profiles
from qtool.bench.plan import model_config, parse_size, plan, recommend
from qtool.cli import ranges
from qtool.cli.output import emit, wants_json
from qtool.serve import tp as tensor_parallel


@click.command("plan")
@click.argument("model")
@click.option("--gpu-mem", required=True, help="Memory budget, e.g. 8GiB or 24GB.")
@click.option("--profiles", "profile_names", default="bf16,gptq-int8,awq-int4,gptq-int4", show_default=True,
              help="Most precise first: the first that fits is recommended.")
@click.option("--image-tokens", type=ranges.IMAGE_TOKENS, default=256, show_default=True)
@click.option("--context", type=ranges.TOKENS, default=2048, show_default=True, help="Tokens held in the KV cache.")
@click.option("--device", default="cuda", show_default=True, help="cuda, or cpu to include the runtime's RSS (measured once per profile on a one-layer "
              "model and cached; the first run quantizes that model, a minute or two).")
@click.option("--tp", type=click.IntRange(min=1), help="Also check each profile's layers split across N ranks as vLLM "
              "splits them (tensor parallelism).")
def command(model, gpu_mem, profile_names, image_tokens, context, device, tp):
    """Predict weights + KV cache + activation peak per profile for MODEL (a folder or a real shape name).

    \b
    Example:
      qtool plan qwen2-vl-7b --gpu-mem 8GiB
    """
    budget = parse_size(gpu_mem)
    config, names = model_config(model), [p.strip() for p in profile_names.split(",")]
    rows = plan(config, names, budget=budget, image_tokens=image_tokens, context=context, device=device)
    ready = tensor_parallel.readiness(config, [profiles.load_profile(n) for n in names], tp, gpu=device == "cuda") \
        if tp else {}
    best = recommend(rows)
    speed = fastest.advice(device, Path(model).name, too_big={r.profile for r in rows if not r.fits})
    gib = 2**30
    emit({"model": model, "budget_bytes": budget, "recommended": best, "rows": [r.to_dict() for r in rows],
          "speed": speed,
          **({"tp": tp, "tp_readiness": ready} if tp else {})},
         title=f"{model} in {budget / gib:.1f} GiB: recommended {best or 'nothing fits'}",
         rows=[{"profile": r.profile, "weights GiB": round(r.weights_bytes / gib, 2),
                "KV GiB": round(r.kv_bytes / gib, 2), "activations GiB": round(r.activation_bytes / gib, 2),
                "runtime GiB": round(r.runtime_bytes / gib, 2),
                "load GiB": round(r.load_bytes / gib, 2), "total GiB": round(r.total_bytes / gib, 2),
                "fits": "yes" if r.fits else "no",
                **({f"TP {tp}": "ok" if ready[r.profile] == "ok" else "no"} if tp else {})} for r in rows])
    if not wants_json():
        click.echo("\n".join(speed))
        for name, why in ready.items():
            if why != "ok":
                click.echo(f"TP {tp}, {name}: {why}")
