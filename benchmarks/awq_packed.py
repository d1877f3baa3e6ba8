"""AWQ-Int4 fitted to every calibration conversation (``pack_conversations = true``) against qtool's default.

Builds the shipped awq-int4 profile with its 128 conversations packed (qtool.calibration.packing) and evaluates it
with bf16 on the first questions of the test split; the default AWQ, RTN and GPTQ rows on the same questions are
in benchmarks/results/awq-batches-qwen2-vl-tiny/eval/.

    python -m benchmarks.awq_packed [--limit 400] [--out benchmarks/results/awq-batches-qwen2-vl-tiny/packed]
"""

import argparse
import json
import shutil
from pathlib import Path

from qtool import eval as evaluation
from qtool import paths, profiles
from qtool.eval import report as eval_report
from qtool.eval.dataset import TEST_SET
from qtool.quantization import quantize


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--limit", type=int, default=400)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/awq-batches-qwen2-vl-tiny/packed"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    toml = args.out / "awq-int4-packed.toml"
    toml.write_text((paths.PROFILES / "awq-int4.toml").read_text() + "pack_conversations = true\n")
    work = paths.cache() / "awq-packed"
    shutil.rmtree(work, ignore_errors=True)
    result = quantize("qwen2-vl-tiny", profiles.load_profile(toml), out=work)
    manifest = json.loads((work / "qtool.json").read_text())
    (args.out / "quantize.json").write_text(json.dumps(
        {"calibration": manifest["calibration"], "wall_s": result.wall_s, "peak_rss_mb": result.peak_rss_mb},
        indent=2) + "\n")
    report = evaluation.run("qwen2-vl-tiny", ["bf16", str(toml)], dataset=TEST_SET, limit=args.limit,
                            artifacts={toml.stem: work})
    eval_report.write(report, args.out / "eval", force=True)
    for row in report.rows:
        print(row["profile"], row.get("kl_answer"), row.get("kl_all_text"))


if __name__ == "__main__":
    main()
