"""How much of a KL difference between two 4-bit methods on the tiny model is the luck of one rounding?

``qtool eval``'s ± and z take the questions as the sampled unit: they say how sure a difference is for one set of
quantized weights. Quantizing an equivalent model again rounds some weights the other way. This builds copies of
the tiny model that compute the same function (hidden channels, MLP neurons and KV heads with their query heads
permuted: exact in float, only the summation order changes), so every method's groups of 128 input channels hold
other weights; quantizes each copy with each method, evaluates each against its own bf16 on the same test-split
questions, and reports each method's KL as mean ± SD over copies and each method difference as mean ± SE over
copies (copy 0 is the tiny model itself). Each copy's result is kept as it finishes; a rerun resumes, and a rerun
with more ``--methods`` evaluates only what the records lack.

    python -m benchmarks.quant_realizations [--copies 8] [--limit 1000] [--methods rtn-int4,awq-int4,...]
                                            [--out benchmarks/results/quant-realizations-qwen2-vl-tiny]
"""

import argparse
import functools
import json
import shutil
import statistics
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from benchmarks import awq_search
from qtool import eval as evaluation
from qtool import infer, paths, profiles
from qtool.calibration.images import load_image
from qtool.eval import report as eval_report
from qtool.eval.dataset import TEST_SET, load_vqa
from qtool.eval.forced import encode_conversations
from qtool.quantization import quantize

TINY = paths.ASSETS / "qwen2-vl-tiny"
METHODS = ["rtn-int4", "rtn-int4-asym", "awq-int4", "gptq-int4", "awq-int4-packed", "awq-int4-x-only",
           "awq-int4-packed-text", "awq-int4-packed-mixed"]
# methods that change GPTQModel's AWQ search itself (see benchmarks/awq_search.py): quantized here, not by eval
SEARCH = {"awq-int4-x-only": awq_search.VARIANTS["awq-x-only"][1]}
PAIRS = [("awq-int4", "rtn-int4"), ("gptq-int4", "rtn-int4"), ("rtn-int4-asym", "rtn-int4"),
         ("awq-int4", "rtn-int4-asym"), ("awq-int4-packed", "rtn-int4"), ("awq-int4-packed", "rtn-int4-asym"),
         ("awq-int4-packed", "awq-int4"), ("awq-int4-x-only", "rtn-int4"), ("awq-int4-x-only", "rtn-int4-asym"),
         ("awq-int4-x-only", "awq-int4"), ("awq-int4-packed-text", "rtn-int4"), ("awq-int4-packed-mixed", "rtn-int4"),
         ("awq-int4-packed-text", "awq-int4-packed"), ("awq-int4-packed-mixed", "awq-int4-packed")]
MEASURES = ("kl_answer", "kl_all_text")


def permuted_copy(out: Path, seed: int) -> None:
    """The tiny model with its hidden channels, each layer's MLP neurons and its KV heads (each with the query heads
    that read it) permuted by ``seed``; seed 0 leaves it as it is."""
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(TINY, out)
    if seed == 0:
        return
    text = json.loads((TINY / "config.json").read_text())["text_config"]
    w = load_file(TINY / "model.safetensors")
    gen = torch.Generator().manual_seed(seed)
    head = text["hidden_size"] // text["num_attention_heads"]
    kv_heads = text["num_key_value_heads"]
    per_kv = text["num_attention_heads"] // kv_heads

    def rows(key, idx):
        w[key] = w[key][idx].contiguous()

    def cols(key, idx):
        w[key] = w[key][:, idx].contiguous()

    def heads(order):
        return torch.cat([torch.arange(h * head, (h + 1) * head) for h in order])

    hidden = torch.randperm(text["hidden_size"], generator=gen)
    cols("model.embed_tokens.weight", hidden)
    cols("lm_head.weight", hidden)
    rows("model.norm.weight", hidden)
    rows("visual.merger.mlp.2.weight", hidden)    # the image embeddings enter the hidden stream here
    rows("visual.merger.mlp.2.bias", hidden)
    for layer in range(text["num_hidden_layers"]):
        at, mlp = f"model.layers.{layer}.self_attn.", f"model.layers.{layer}.mlp."
        for norm in ("input_layernorm", "post_attention_layernorm"):
            rows(f"model.layers.{layer}.{norm}.weight", hidden)
        for key in (at + "q_proj", at + "k_proj", at + "v_proj", mlp + "gate_proj", mlp + "up_proj"):
            cols(key + ".weight", hidden)
        rows(at + "o_proj.weight", hidden)
        rows(mlp + "down_proj.weight", hidden)
        neurons = torch.randperm(w[mlp + "up_proj.weight"].shape[0], generator=gen)
        rows(mlp + "gate_proj.weight", neurons)
        rows(mlp + "up_proj.weight", neurons)
        cols(mlp + "down_proj.weight", neurons)
        kv = torch.randperm(kv_heads, generator=gen).tolist()
        q = [k * per_kv + j for k in kv for j in torch.randperm(per_kv, generator=gen).tolist()]
        for key in ("k_proj", "v_proj"):
            rows(at + key + ".weight", heads(kv))
            rows(at + key + ".bias", heads(kv))
        rows(at + "q_proj.weight", heads(q))
        rows(at + "q_proj.bias", heads(q))
        cols(at + "o_proj.weight", heads(q))
    save_file(w, out / "model.safetensors", metadata={"format": "pt"})


@functools.cache
def first_logits(folder: Path, limit: int = 8) -> torch.Tensor:
    """A float32 model's logits on the first test questions (the tiny model's are computed once per run)."""
    items = load_vqa(TEST_SET, limit)
    model, processor = infer.load_model(folder, dtype="float32")
    enc, _ = encode_conversations(processor, [load_image(i.image) for i in items],
                                  [i.question for i in items], [i.answer for i in items])
    with torch.no_grad():
        return model(**enc).logits


def max_logit_difference(a: Path, b: Path) -> float:
    """Largest |logit difference| of two float32 models on the first test questions: ~1e-5 if they are one function."""
    return float((first_logits(a) - first_logits(b)).abs().max())


def summarize(copies: list[dict]) -> dict:
    """Each method's KL over the copies that have it (mean, SD); each pair's difference over the copies that have
    both (mean, SE, t, how many copies the first method is closer to bf16 on)."""
    def values(m, k, among):
        return [c[m][k] for c in among]

    methods = {}
    for m in METHODS:
        among = [c for c in copies if m in c]
        if len(among) > 1:
            methods[m] = {"copies": len(among)} | {k: {"mean": statistics.mean(values(m, k, among)),
                                                       "sd": statistics.stdev(values(m, k, among))} for k in MEASURES}
    pairs = {}
    for a, b in PAIRS:
        among = [c for c in copies if a in c and b in c]
        if len(among) < 2:
            continue
        pairs[f"{a} − {b}"] = {"copies": len(among)}
        for k in MEASURES:
            d = [x - y for x, y in zip(values(a, k, among), values(b, k, among))]
            mean, se = statistics.mean(d), statistics.stdev(d) / len(d) ** 0.5
            pairs[f"{a} − {b}"][k] = {"mean": mean, "se": se, "t": mean / se, "copies_lower": sum(x < 0 for x in d)}
    return {"methods": methods, "pairs": pairs}


def profile_args(out: Path) -> dict[str, str]:
    """Each method's ``qtool eval`` profile: a shipped profile's name or a TOML variant of one, written to ``out``."""
    variants = {"rtn-int4-asym": awq_search.RTN_ASYM, "awq-int4-packed": awq_search.PACKED,
                "awq-int4-x-only": awq_search.AWQ + "# + GPTQModel's AWQ search with duo_scaling off (SEARCH)\n",
                "awq-int4-packed-text": awq_search.VARIANTS["awq-packed-text"][0],
                "awq-int4-packed-mixed": awq_search.PACKED + 'modality = "mixed"\n'}
    for name, text in variants.items():
        (out / f"{name}.toml").write_text(text)
    return {m: str(out / f"{m}.toml") if m in variants else m for m in METHODS}


def searched(copy: Path, method: str, toml: str) -> Path:
    """``copy`` quantized by a method whose AWQ search settings differ from GPTQModel's."""
    out = copy.parent / f"{copy.name}-{method}"
    shutil.rmtree(out, ignore_errors=True)
    with awq_search.search_settings(SEARCH[method]):
        quantize(copy, profiles.load_profile(Path(toml)), out=out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--copies", type=int, default=8)
    ap.add_argument("--limit", type=int, default=1000)
    ap.add_argument("--methods", default=",".join(METHODS[:4]), help=f"comma-separated, of {', '.join(METHODS)}")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/quant-realizations-qwen2-vl-tiny"))
    args = ap.parse_args()
    methods = args.methods.split(",")
    (args.out / "copies").mkdir(parents=True, exist_ok=True)
    profile = profile_args(args.out)
    for seed in range(args.copies):
        record = args.out / "copies" / f"{seed}.json"
        result = json.loads(record.read_text()) if record.exists() else {}
        missing = [m for m in methods if m not in result]
        if missing:
            folder = paths.cache() / "quant-realizations" / f"copy-{seed}"
            permuted_copy(folder, seed)
            if "max_logit_difference_to_tiny" not in result:
                result["max_logit_difference_to_tiny"] = max_logit_difference(TINY, folder)
            built = {m: searched(folder, m, profile[m]) for m in missing if m in SEARCH}
            report = evaluation.run(folder, ["bf16", *(profile[m] for m in missing)], dataset=TEST_SET,
                                    limit=args.limit, status=print, artifacts=built)
            for r in report.rows[1:]:
                result[r["profile"]] = {k: r[k]["mean"] for k in MEASURES} | {
                    "accuracy": r["accuracy"]["overall"]["accuracy"]}
            result["paired_over_questions"] = result.get("paired_over_questions", []) + eval_report.paired_rows(report)
            record.write_text(json.dumps(result, indent=2) + "\n")
            print(f"copy {seed}: {json.dumps({m: result[m] for m in missing})}", flush=True)
    every = [json.loads(f.read_text()) for f in sorted((args.out / "copies").glob("*.json"))]
    summary = {"limit": args.limit, "dataset": TEST_SET.name, **summarize(every)}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
