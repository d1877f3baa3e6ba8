"""Does AWQ lose to round-to-nearest on the tiny model because it fits its scales to one conversation?

GPTQModel 7.7's AWQ concatenates the calibration batches' activations only when they have the same shape;
with qtool's one-conversation-per-batch calibration (every length differs) it keeps the last batch alone
("latest_batch"). This study builds AWQ-Int4 three ways and evaluates them with RTN-Int4 and GPTQ-Int4 on the
test split:

- ``awq-int4``: qtool's default (128 conversations, AWQ sees the last one);
- ``awq-int4-fixed``: every calibration image resized to 224x224, otherwise the same (still the last one);
- ``awq-int4-equal``: the same 224x224 images, every conversation cut to the shortest one's token count, so
  all batches have one shape and AWQ fits its scales to all 128 (the images stay whole: they come first).

    python benchmarks/awq_batches.py [--limit 400] [--out benchmarks/results/awq-batches-qwen2-vl-tiny]
"""

import argparse
import contextlib
import json
import shutil
from pathlib import Path

from qtool import eval as evaluation
from qtool import paths, profiles
from qtool.calibration import samples
from qtool.eval.dataset import TEST_SET
from qtool.eval import report as eval_report
from qtool.quantization import quantize

SIZE = (224, 224)


@contextlib.contextmanager
def calibration_images_resized():
    original = samples.load_image

    def load(path):
        return original(path).convert("RGB").resize(SIZE)

    samples.load_image = load
    try:
        yield
    finally:
        samples.load_image = original


@contextlib.contextmanager
def batches_cut_to_shortest(stats: dict):
    """GPTQModel's Qwen2-VL dataset preparation, each sample then cut to the shortest sample's length."""
    from gptqmodel.models.definitions.base_qwen2_vl import BaseQwen2VLGPTQ

    original = BaseQwen2VLGPTQ.prepare_dataset

    def prepare(self, calibration_dataset, batch_size=1, **kwargs):
        data = original(self, calibration_dataset, batch_size=batch_size, **kwargs)
        lengths = [d["input_ids"].shape[1] for d in data]
        cut = min(lengths)
        image_token = self.model.config.image_token_id
        for d in data:
            for key in ("input_ids", "attention_mask", "mm_token_type_ids"):
                if key in d:
                    d[key] = d[key][:, :cut]
            assert int((d["input_ids"] == image_token).sum()) * 4 == int(d["image_grid_thw"].prod(-1).sum())
        stats.update(samples=len(data), tokens_before=sum(lengths), tokens_after=cut * len(data), length=cut)
        return data

    BaseQwen2VLGPTQ.prepare_dataset = prepare
    try:
        yield
    finally:
        BaseQwen2VLGPTQ.prepare_dataset = original


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--limit", type=int, default=400)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/awq-batches-qwen2-vl-tiny"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    work = paths.cache() / "awq-batches"
    base = profiles.load_profile("awq-int4")
    built, stats = {}, {}
    for name, contexts in (("awq-int4-fixed", [calibration_images_resized()]),
                           ("awq-int4-equal", [calibration_images_resized(), batches_cut_to_shortest(stats)])):
        toml = args.out / f"{name}.toml"
        toml.write_text((paths.PROFILES / "awq-int4.toml").read_text().replace(
            base.description, f"{base.description} ({name} study variant)"))
        shutil.rmtree(work / name, ignore_errors=True)
        with contextlib.ExitStack() as stack:
            for c in contexts:
                stack.enter_context(c)
            quantize("qwen2-vl-tiny", profiles.load_profile(toml), out=work / name)
        built[str(toml)] = work / name
    report = evaluation.run("qwen2-vl-tiny", ["bf16", "rtn-int4", "gptq-int4", "awq-int4", *built], dataset=TEST_SET,
                            limit=args.limit, artifacts={Path(k).stem: v for k, v in built.items()})
    eval_report.write(report, args.out / "eval", force=True)
    (args.out / "cut.json").write_text(json.dumps(stats, indent=2) + "\n")
    for row in report.rows:
        print(row["profile"], row.get("kl_answer"), row.get("kl_all_text"))


if __name__ == "__main__":
    main()
