"""Does AWQ beat round-to-nearest once the activations have outlier channels, as real LLMs' do?

The tiny model's linear inputs are nearly flat (the largest channel of a q/k/v or gate/up input is at most ~4x the
median), so AWQ's per-channel scales have little to protect. This builds a copy of the tiny model with the same
function and LLM-like outliers: in every decoder layer a few channels of both RMSNorm weights are multiplied by
``--alpha`` and the matching input columns of q/k/v and gate/up divided by it (exact in real arithmetic; bf16
rounding only). Then RTN-, AWQ- and GPTQ-Int4 of both models on the same test-split questions, each against its
own bf16, with the question-by-question comparison of ``qtool eval``.

    python -m benchmarks.awq_outliers [--limit 400] [--out benchmarks/results/awq-outliers-qwen2-vl-tiny]
"""

import argparse
import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from qtool import eval as evaluation
from qtool import infer, paths
from qtool.calibration.images import load_image
from qtool.eval import report as eval_report
from qtool.eval.dataset import TEST_SET, load_vqa
from qtool.eval.forced import encode_conversations

TINY = paths.ASSETS / "qwen2-vl-tiny"
PROFILES = ["bf16", "rtn-int4", "awq-int4", "gptq-int4"]
FOLLOWERS = {"input_layernorm": ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
             "post_attention_layernorm": ("mlp.gate_proj", "mlp.up_proj")}


def with_outliers(out: Path, alpha: float, channels: int, seed: int = 0) -> dict:
    """Write the rescaled copy of the tiny model to ``out``; return which channels of which layer were scaled."""
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(TINY, out)
    weights = load_file(TINY / "model.safetensors")
    layers = sorted({k.split(".layers.")[1].split(".")[0] for k in weights if ".language_model.layers." in k
                     or k.startswith("model.layers.")}, key=int)
    prefix = next(k.split("layers.")[0] for k in weights if "layers.0.input_layernorm" in k)
    gen = torch.Generator().manual_seed(seed)
    chosen = {}
    for layer in layers:
        for norm, linears in FOLLOWERS.items():
            key = f"{prefix}layers.{layer}.{norm}.weight"
            idx = torch.randperm(weights[key].numel(), generator=gen)[:channels]
            chosen[f"{layer}.{norm}"] = idx.tolist()
            w = weights[key].float()
            w[idx] *= alpha
            weights[key] = w.to(weights[key].dtype)
            for lin in linears:
                lkey = f"{prefix}layers.{layer}.{lin}.weight"
                lw = weights[lkey].float()
                lw[:, idx] /= alpha
                weights[lkey] = lw.to(weights[lkey].dtype)
    save_file(weights, out / "model.safetensors", metadata={"format": "pt"})
    return chosen


def input_spread(model_dir: Path, limit: int = 48) -> dict:
    """Largest channel's mean |input| over the median channel's, per kind of linear, on test-split questions."""
    model, processor = infer.load_model(model_dir, dtype="float32")
    items = load_vqa(TEST_SET, limit)
    enc, _ = encode_conversations(processor, [load_image(i.image) for i in items],
                                  [i.question for i in items], [i.answer for i in items])
    keep = enc["attention_mask"].reshape(-1).bool()
    spread: dict[str, float] = {}

    def hook(name):
        def record(_mod, inputs, _out):
            m = inputs[0].reshape(-1, inputs[0].shape[-1])[keep].abs().mean(0)
            kind = name.rsplit(".", 1)[-1]
            spread[kind] = max(spread.get(kind, 0.0), round(float(m.max() / m.median()), 1))
        return record

    for name, module in model.named_modules():
        if ".layers." in name and "visual" not in name and name.endswith(("q_proj", "gate_proj", "down_proj")):
            module.register_forward_hook(hook(name))
    with torch.no_grad():
        model(**enc)
    return spread


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--limit", type=int, default=400)
    ap.add_argument("--alpha", type=float, default=30.0)
    ap.add_argument("--channels", type=int, default=4, help="channels scaled per RMSNorm")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/awq-outliers-qwen2-vl-tiny"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rescaled = paths.cache() / "qwen2-vl-tiny-outliers"
    chosen = with_outliers(rescaled, args.alpha, args.channels)
    summary = {"alpha": args.alpha, "channels_per_norm": args.channels, "scaled": chosen, "limit": args.limit,
               "max_over_median_input": {"tiny": input_spread(TINY), "outliers": input_spread(rescaled)}}
    # the rescaled float model must compute what the tiny model computes: its KL against the original is the floor
    float_copy = args.out / "bf16-outliers.toml"
    float_copy.write_text((paths.PROFILES / "bf16.toml").read_text())
    check = evaluation.run(TINY, ["bf16", str(float_copy)], dataset=TEST_SET, limit=args.limit,
                           artifacts={"bf16-outliers": rescaled})
    summary["float_kl_all_text_rescaled_vs_tiny"] = check.rows[1]["kl_all_text"]["mean"]
    for name, model in (("tiny", TINY), ("outliers", rescaled)):
        report = evaluation.run(model, PROFILES, dataset=TEST_SET, limit=args.limit, status=print)
        eval_report.write(report, args.out / name, force=True)
        summary[name] = {r["profile"]: {"kl_answer": r["kl_answer"]["mean"], "kl_all_text": r["kl_all_text"]["mean"],
                                        "accuracy": r["accuracy"]["overall"]["accuracy"]} for r in report.rows}
        summary[name]["paired"] = eval_report.paired_rows(report)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "scaled"}, indent=2))


if __name__ == "__main__":
    main()
