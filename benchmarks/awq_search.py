"""Is AWQ's tie with round-to-nearest on the tiny model a choice inside AWQ's search?

AWQ-Int4 = asymmetric 4-bit rounding (zero point) + a per-input-channel scale searched on a grid + a per-group clip
searched per linear. GPTQModel 7.7 searches ``s = x_mean^r / w_mean^(1-r)`` (``duo_scaling``), whose grid does not
contain s = 1 (no scaling); the original AWQ searched ``s = x_mean^r``, whose r = 0 is no scaling. Each variant below
changes one of those choices; all are evaluated with bf16, RTN-Int4 (symmetric, qtool's baseline) and GPTQ-Int4 on
the same test-split questions, with ``qtool eval``'s question-by-question differences.

    python -m benchmarks.awq_search [--limit 1000] [--out benchmarks/results/awq-search-qwen2-vl-tiny]
"""

import argparse
import contextlib
import json
import shutil
import time
from pathlib import Path

from gptqmodel.looper import awq_processor

from qtool import eval as evaluation
from qtool import paths, profiles
from qtool.eval import report as eval_report
from qtool.eval.dataset import TEST_SET
from qtool.quantization import quantize

AWQ = (paths.PROFILES / "awq-int4.toml").read_text()
PACKED = AWQ + "pack_conversations = true\n"
RTN_ASYM = (paths.PROFILES / "rtn-int4.toml").read_text().replace("sym = true", "sym = false")
# name: (profile TOML, GPTQModel AWQ search settings, what it asks)
VARIANTS = {
    "rtn-int4-asym": (RTN_ASYM, {}, "AWQ's rounding (zero point) without any search"),
    "awq-no-clip": (AWQ, {"apply_clip": False}, "default AWQ without the clip search"),
    "awq-x-only": (AWQ, {"duo_scaling": False}, "scales from activations only: no scaling is in the grid"),
    "awq-packed": (PACKED, {}, "fitted to every calibration conversation, not the last"),
    "awq-packed-x-only": (PACKED, {"duo_scaling": False}, "both"),
    "awq-packed-text": (PACKED + 'modality = "text"\n', {},
                        "fitted to every conversation's text alone: image tokens do not dominate the search's error"),
}


@contextlib.contextmanager
def search_settings(settings: dict):
    """GPTQModel's AWQProcessor sets these in __init__; override them for the quantizations inside."""
    original = awq_processor.AWQProcessor.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        for key, value in settings.items():
            setattr(self, key, value)
    awq_processor.AWQProcessor.__init__ = init
    try:
        yield
    finally:
        awq_processor.AWQProcessor.__init__ = original


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--limit", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/awq-search-qwen2-vl-tiny"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    built, tomls, seconds = {}, [], {}
    for name, (text, settings, _) in VARIANTS.items():
        toml = args.out / f"{name}.toml"
        toml.write_text(text)
        folder = paths.cache() / "awq-search" / name
        shutil.rmtree(folder, ignore_errors=True)
        with search_settings(settings):
            start = time.time()
            quantize("qwen2-vl-tiny", profiles.load_profile(toml), out=folder)
            seconds[name] = round(time.time() - start)
        built[name], tomls = folder, tomls + [str(toml)]
        print(f"{name}: quantized in {seconds[name]} s", flush=True)
    report = evaluation.run("qwen2-vl-tiny", ["bf16", "rtn-int4", "awq-int4", "gptq-int4", *tomls], dataset=TEST_SET,
                            limit=args.limit, status=print, artifacts=built)
    eval_report.write(report, args.out / "eval", force=True)
    summary = {"limit": args.limit, "quantize_s": seconds,
               "variants": {name: {"settings": s, "asks": asks} for name, (_, s, asks) in VARIANTS.items()},
               "rows": {r["profile"]: {k: r[k]["mean"] for k in ("kl_answer", "kl_all_text")} for r in report.rows},
               "paired": eval_report.paired_rows(report)}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary["rows"], indent=2))


if __name__ == "__main__":
    main()
