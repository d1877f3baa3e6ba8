"""``qtool plan``: which precision fits on a given GPU, before downloading or quantizing anything."""

from __future__ import annotations

import click

from qtool.bench.plan import model_config, parse_size, plan, recommend
from qtool.cli.output import emit


@click.command("plan")
@click.argument("model")
@click.option("--gpu-mem", required=True, help="Memory budget, e.g. 8GiB or 24GB.")
@click.option("--profiles", "profile_names", default="bf16,gptq-int8,awq-int4,gptq-int4", show_default=True,
              help="Most precise first: the first that fits is recommended.")
@click.option("--image-tokens", default=256, show_default=True)
@click.option("--context", default=2048, show_default=True, help="Tokens held in the KV cache.")
@click.option("--device", default="cuda", show_default=True, help="cuda, or cpu to include the runtime's RSS (measured once per profile on a one-layer "
              "model and cached; the first run quantizes that model, a minute or two).")
def command(model, gpu_mem, profile_names, image_tokens, context, device):
    """Predict weights + KV cache + activation peak per profile for MODEL (a folder or a real shape name).

    \b
    Example:
      qtool plan qwen2-vl-7b --gpu-mem 8GiB
    """
    budget = parse_size(gpu_mem)
    rows = plan(model_config(model), [p.strip() for p in profile_names.split(",")], budget=budget,
                image_tokens=image_tokens, context=context, device=device)
    best = recommend(rows)
    gib = 2**30
    emit({"model": model, "budget_bytes": budget, "recommended": best, "rows": [r.to_dict() for r in rows]},
         title=f"{model} in {budget / gib:.1f} GiB: recommended {best or 'nothing fits'}",
         rows=[{"profile": r.profile, "weights GiB": round(r.weights_bytes / gib, 2),
                "KV GiB": round(r.kv_bytes / gib, 2), "activations GiB": round(r.activation_bytes / gib, 2),
                "runtime GiB": round(r.runtime_bytes / gib, 2),
                "load GiB": round(r.load_bytes / gib, 2), "total GiB": round(r.total_bytes / gib, 2),
                "fits": "yes" if r.fits else "no"} for r in rows])
