"""``release``: every variant of a model, with model cards, checksums and a manifest; resumable.

A variant is rebuilt only when missing or when its inputs changed (source
weights hash, profile, calibration set hash), and appears only when complete.
What the last sealed release measured of an unchanged variant (eval rows,
answer agreement, recorded answers) is kept; bench is one run for all
variants (its ratios compare them), so any change re-measures it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from qtool import artifacts as registry
from qtool import bench, paths, profiles
from qtool import eval as qeval
from qtool.bench import report as bench_report
from qtool.errors import QtoolError
from qtool.eval import report as eval_report
from qtool.eval.agreement import answer_agreement
from qtool.fingerprint import sha256_file, versions
from qtool.models.checkpoint import checkpoint_of
from qtool.outputs import check_writable
from qtool.release import answers, card
from qtool.release.bundle import MANIFEST, BundleWriter
from qtool.reporting import markdown_table

Status = Callable[[str], None]


@dataclass(frozen=True)
class ReleaseSettings:
    calib: Path | None = None
    samples: int | None = None
    eval_limit: int | None = 500
    bench: bench.BenchSettings = bench.BenchSettings()


def _check_folder(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise QtoolError(f"release path {out} is not a folder", "choose another --out")
    check_writable(out)
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).exists() and not (out / ".qtool-release").exists():
        raise QtoolError(f"{out} is a non-empty folder that is not a qtool release", "choose an empty or new --out")


def run(model: str | Path, profile_names: list[str], out: Path, settings: ReleaseSettings = ReleaseSettings(),
        status: Status | None = None, progress=None) -> dict:
    say = status or (lambda _m: None)
    out = Path(out)
    _check_folder(out)
    bench.check_settings(settings.bench, option_prefix="bench-")
    info = checkpoint_of(model)
    chosen = [registry.with_samples(profiles.load_profile(n), settings.samples) for n in profile_names]
    if not chosen or any(not registry.kind_of(p).releasable for p in chosen):
        raise QtoolError("release profiles must be quantized or exported profiles",
                         "use e.g. --profiles gptq-int4,gptq-int8,awq-int4,gguf-q4_k_m,onnx-vision-int8")
    out.mkdir(parents=True, exist_ok=True)
    (out / ".qtool-release").touch()
    measured_with = _settings_record(settings)
    previous = _Previous.read(out, info.sha256, measured_with)
    (out / MANIFEST).unlink(missing_ok=True)  # the manifest is rewritten (sealed) only when everything is done
    calib = Path(settings.calib or paths.CALIB_DATA)
    built, timings, rebuilt = {}, {}, []
    for profile in chosen:
        name = f"{info.path.name}-{profile.name}"
        folder = out / name
        kind = registry.kind_of(profile)
        if registry.recorded_inputs(folder) == registry.inputs(info, profile, calib):
            say(f"{name}: up to date, kept")
        else:
            say(f"{name}: building ({kind.name})")
            t = time.time()
            registry.build(info, profile, folder, calib=calib, progress=progress)
            timings[name] = round(time.time() - t, 2)
            rebuilt.append(name)
        built[profile.name] = folder
    kept = {folder.name for folder in built.values() if folder.name not in rebuilt and previous.vouches_for(folder)}
    eval_rows, agreement_rows, bench_rows, eval_machine, bench_machine = _measure(
        info, chosen, built, out, settings, previous, kept, say, progress)
    say("recording held-out answers of the float model and every changed variant")
    ids, _, _ = answers.questions()
    same_questions = previous.manifest.get("answer_check", {}).get("questions") == ids
    reference = (previous.manifest["answer_check"]["float"] if same_questions
                 else answers.answer(info.path, profiles.load_profile("bf16"), info.path))
    writer = BundleWriter(out)
    for profile in chosen:
        folder, kind = built[profile.name], registry.kind_of(profile)
        manifest = json.loads((folder / registry.MANIFEST).read_text())
        keep = {"bf16", profile.name}
        accuracy = ([r for r in eval_rows if r["precision"] in keep] if kind.teacher_forced
                    else [r for r in agreement_rows if r["variant"] == folder.name])
        (folder / "README.md").write_text(card.render(
            folder.name, kind, manifest, str(model), accuracy, [r for r in bench_rows if r["profile"] in keep],
            eval_machine, bench_machine, info.random_weights))
        recorded = (previous.manifest["variants"][folder.name]["answers"] if same_questions and folder.name in kept
                    else answers.answer(folder, profile, info.path))
        writer.add_variant(folder.name, {"profile": profile.name, "kind": kind.consumer,
                                         "inputs": registry.recorded_inputs(folder), "answers": recorded})
    return writer.seal({"qtool_release": 1, "model": str(model), "source_path": str(info.path.absolute()),
                        "source_sha256": info.sha256, "settings": measured_with,
                        "answer_check": {"questions": ids, "float": reference},
                        "random_weights": info.random_weights, "versions": versions(),
                        "timings_s": timings, "rebuilt": rebuilt})


def _settings_record(settings: ReleaseSettings) -> dict:
    """The settings that shape the measurements (calibration and samples shape the variants' own inputs)."""
    record = {"eval_limit": settings.eval_limit, "bench": settings.bench.__dict__}
    return json.loads(json.dumps(record, default=str))    # as the manifest stores it: tuples as lists


@dataclass(frozen=True)
class _Previous:
    """The last sealed release in the folder, when it measured the same source with the same settings.

    An interrupted run leaves no manifest (it is removed before anything is rebuilt), so nothing of it is
    reused; a results file is reused only while its bytes are the ones the manifest sealed."""
    root: Path
    manifest: dict

    @classmethod
    def read(cls, root: Path, source_sha256: str, settings: dict) -> "_Previous":
        try:
            manifest = json.loads((root / MANIFEST).read_text())
        except (OSError, ValueError):
            manifest = {}
        if manifest.get("source_sha256") != source_sha256 or manifest.get("settings") != settings:
            manifest = {}
        return cls(root, manifest)

    def vouches_for(self, folder: Path) -> bool:
        variant = self.manifest.get("variants", {}).get(folder.name)
        return bool(variant) and variant["inputs"] == registry.recorded_inputs(folder)

    def sealed(self, rel: str) -> Path | None:
        path, record = self.root / rel, self.manifest.get("files", {}).get(rel)
        return path if record and path.is_file() and sha256_file(path) == record["sha256"] else None


def _measure(info, chosen, built, out, settings, previous: _Previous, kept: set[str], say, progress):
    """Eval and bench tables for the cards.

    Variants whose consumer gives torch logits get ``qtool eval``'s accuracy and fidelity rows (one run, all of
    them against bf16); the others (GGUF, ONNX vision) the agreement of their held-out answers with the float
    model's, one row each.
    """
    names = ["bf16"] + [p.name for p in chosen]
    forced = [p for p in chosen if registry.kind_of(p).teacher_forced]
    exported = {built[p.name].name: (p, built[p.name]) for p in chosen if not registry.kind_of(p).teacher_forced}
    eval_file, bench_file = out / "eval" / "eval.json", out / "bench" / "bench.json"
    agree_file = out / "eval" / "agreement.json"
    if not info.random_weights:
        old_eval = previous.sealed("eval/eval.json")
        precisions = ["bf16"] + [p.name for p in forced]
        if (old_eval is None or any(built[p.name].name not in kept for p in forced)
                or [r["profile"] for r in json.loads(old_eval.read_text())["rows"]] != precisions):
            say("evaluating all variants against bf16")
            eval_rep = qeval.run(info, precisions, limit=settings.eval_limit, calib=settings.calib,
                                 samples=settings.samples, status=say, progress=progress, artifacts=built)
            eval_report.write(eval_rep, out / "eval", force=True)
        old_agree = previous.sealed("eval/agreement.json")
        reused = {r["variant"]: r for r in (json.loads(old_agree.read_text()) if old_agree else [])
                  if r["variant"] in kept and r["variant"] in exported}
        todo = {name: v for name, v in exported.items() if name not in reused}
        if todo:
            say(f"answering the held-out questions with {', '.join(todo)}")
        fresh = {r["variant"]: r for r in answer_agreement(info, todo, settings.eval_limit)}
        agreement = [reused.get(name) or fresh[name] for name in exported]
        if agreement:
            agree_file.write_text(json.dumps(agreement, indent=2) + "\n")
            agree_file.with_suffix(".md").write_text(markdown_table(agreement) + "\n")
        else:   # no exported variant any more: no stale rows in the bundle
            agree_file.unlink(missing_ok=True)
            agree_file.with_suffix(".md").unlink(missing_ok=True)
    old_bench = previous.sealed("bench/bench.json")
    if (old_bench is None or any(f.name not in kept for f in built.values())
            or [r["profile"] for r in json.loads(old_bench.read_text())["records"]] != names):
        say("benchmarking all variants")
        bench_rep = bench.run(info, names, settings.bench, status=say, progress=progress, artifacts=built)
        bench_report.write(bench_rep, out / "bench", force=True)
    eval_data = json.loads(eval_file.read_text()) if eval_file.exists() else None
    bench_data = json.loads(bench_file.read_text())
    eval_rows = eval_report.rows(qeval.EvalReport(**eval_data)) if eval_data else []
    agreement_rows = json.loads(agree_file.read_text()) if agree_file.exists() else []
    bench_rows = bench.summary_rows(bench.BenchReport(**bench_data))
    return eval_rows, agreement_rows, bench_rows, (eval_data or {}).get("machine"), bench_data["machine"]
