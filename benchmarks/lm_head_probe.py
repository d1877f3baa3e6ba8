"""Can a GPTQ artifact with a quantized ``lm_head`` be used where qtool's users load it? (issue #22, item 4)

Quantizes the tiny model with a shipped GPTQ profile plus GPTQModel's ``lm_head=True`` (which GPTQModel 7.7
supports only without layer checkpoints, and for Qwen2-VL only after naming the final norm as one string: its
Qwen2-VL definition gives a list, and the lm_head stage then fails with "startswith first arg must be str").
Then loads the artifact two ways and answers held-out questions with each, against the bf16 model's answers:

- stock transformers (how qtool, its release cards and most users load GPTQ checkpoints);
- GPTQModel's own loader.

    python -m benchmarks.lm_head_probe [--bits 8] [--limit 100] [--out benchmarks/results/lm-head-qwen2-vl-tiny]

Everything the probe patches is local to it; qtool ships no lm_head profile (docs/quantize.md says why).
"""

import argparse
import contextlib
import dataclasses
import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import torch

import qtool.quantization as quantization
from qtool import machine, paths, profiles
from qtool.calibration.images import load_image
from qtool.eval.dataset import TEST_SET, load_vqa
from qtool.infer import answer, load_model
from qtool.quantization import engine


@contextlib.contextmanager
def lm_head_quantized():
    """GPTQ profiles quantize lm_head too, without checkpoints, with the final norm named as GPTQModel needs."""
    import gptqmodel

    handler, resumable, load = engine._HANDLERS[profiles.GPTQProfile], quantization.resumable, gptqmodel.GPTQModel.load

    def with_lm_head(profile, device):
        config = handler(profile, device)
        config.lm_head = True
        return config

    def loaded(*args, **kwargs):
        model = load(*args, **kwargs)
        model.pre_lm_head_norm_module = "model.language_model.norm"
        return model

    engine._HANDLERS[profiles.GPTQProfile] = with_lm_head
    quantization.resumable = lambda _profile: False
    gptqmodel.GPTQModel.load = loaded
    try:
        yield
    finally:
        engine._HANDLERS[profiles.GPTQProfile], quantization.resumable = handler, resumable
        gptqmodel.GPTQModel.load = load


def gptqmodel_answers(folder: Path, processor, images, questions) -> tuple[str, list[str]]:
    from gptqmodel import GPTQModel

    model = GPTQModel.load(str(folder), device="cpu").model.eval()
    return type(model.lm_head).__name__, answer(model, processor, images, questions)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bits", type=int, default=8, choices=(4, 8))
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/lm-head-qwen2-vl-tiny"))
    args = ap.parse_args()
    profile = dataclasses.replace(profiles.load_profile(f"gptq-int{args.bits}"), samples=args.samples)
    work = paths.cache() / "lm-head-probe"
    shutil.rmtree(work, ignore_errors=True)
    with lm_head_quantized():
        quantization.quantize("qwen2-vl-tiny", profile, out=work)
    config = json.loads((work / "config.json").read_text())["quantization_config"]

    items = load_vqa(TEST_SET, args.limit)
    images, questions = [load_image(it.image) for it in items], [it.question for it in items]
    float_model, processor = load_model(paths.ASSETS / "qwen2-vl-tiny")
    reference = answer(float_model, processor, images, questions)
    stock, _ = load_model(work)
    stock_answers = answer(stock, processor, images, questions)
    own_head, own_answers = gptqmodel_answers(work, processor, images, questions)

    def row(loader: str, head: str, got: list[str]) -> dict:
        return {"loader": loader, "lm_head module": head, "questions": len(items),
                "answers = bf16": sum(a == b for a, b in zip(got, reference)),
                "correct": sum(a == it.answer for a, it in zip(got, items))}

    rows = [row("bf16 (reference)", type(float_model.lm_head).__name__, reference),
            row("stock transformers", type(stock.lm_head).__name__, stock_answers),
            row("GPTQModel.load", own_head, own_answers)]
    record = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine.info(),
              "profile": profile.name, "samples": args.samples, "torch": torch.__version__,
              "lm_head_config": {k: config.get(k) for k in ("lm_head", "dynamic")}, "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"gptq-int{args.bits}.json").write_text(json.dumps(record, indent=2) + "\n")
    for r in rows:
        print(r)


if __name__ == "__main__":
    main()
