"""``evaluate``: what each precision costs in accuracy, measured offline against the float model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from qtool import infer, machine, profiles
from qtool.bench.artifacts import artifact_for
from qtool.calibration.images import load_image
from qtool.errors import QtoolError
from qtool.eval import fidelity
from qtool.eval.dataset import VQAItem, default_captions, default_dataset, load_captions, load_vqa
from qtool.eval.forced import forced_logp
from qtool.models.checkpoint import inspect_checkpoint, resolve_model

Status = Callable[[str], None]


@dataclass
class EvalReport:
    model: str
    dataset: str
    questions: int
    machine: dict
    rows: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"model": self.model, "dataset": self.dataset, "questions": self.questions, "machine": self.machine,
                "rows": self.rows}


def accuracy(items: list[VQAItem], answers: list[str]) -> dict:
    by_type: dict[str, list[bool]] = {}
    for it, a in zip(items, answers):
        by_type.setdefault(it.type, []).append(a.strip().lower() == it.answer.strip().lower())
    by_type["overall"] = [x for v in list(by_type.values()) for x in v]
    return {k: {"accuracy": sum(v) / len(v), "se": fidelity.standard_error(sum(v) / len(v), len(v)), "n": len(v)}
            for k, v in by_type.items()}


def run(model: str | Path, profile_names: list[str], *, dataset: Path | None = None, captions: Path | None = None,
        limit: int | None = None, calib: Path | None = None, samples: int | None = None,
        status: Status | None = None, progress=None, artifacts: dict[str, Path] | None = None) -> EvalReport:
    """Evaluate each profile; the first float profile (bf16 if none is named) is the reference.
    ``artifacts`` maps profile names to already-built artifacts."""
    if not profile_names:
        raise QtoolError("no profiles given", "pass e.g. --profiles bf16,gptq-int4")
    say = status or (lambda _m: None)
    source = resolve_model(model)
    inspect_checkpoint(source)
    chosen = [profiles.load_profile(n) for n in profile_names]
    if not any(isinstance(p, profiles.FloatProfile) for p in chosen):
        chosen.insert(0, profiles.load_profile("bf16"))
    ref_profile = next(p for p in chosen if isinstance(p, profiles.FloatProfile))
    dataset = Path(dataset) if dataset else default_dataset(source)
    items = load_vqa(dataset, limit)
    captions_file = Path(captions) if captions else default_captions(dataset)
    caption_items = load_captions(captions_file, limit) if captions_file else []
    images = [load_image(it.image) for it in items]
    caption_images = [load_image(c.image) for c in caption_items]
    questions, answers_gold = [it.question for it in items], [it.answer for it in items]
    report = EvalReport(str(model), str(dataset), len(items), machine.info())
    ref_model, processor = infer.load_model(source, ref_profile.dtype)
    ref_accuracy = None
    for profile in [ref_profile] + [p for p in chosen if p is not ref_profile]:
        say(f"{profile.name}: preparing")
        path = (artifacts or {}).get(profile.name) or artifact_for(source, profile, calib=calib, samples=samples,
                                                                   progress=progress)
        test = ref_model if profile is ref_profile else infer.load_model(path, getattr(profile, "dtype", "bfloat16"))[0]
        say(f"{profile.name}: answering {len(items)} questions")
        answers = infer.answer(test, processor, images, questions)
        acc = accuracy(items, answers)
        ref_accuracy = ref_accuracy if ref_accuracy is not None else acc["overall"]["accuracy"]
        say(f"{profile.name}: teacher-forced fidelity against {ref_profile.name}")
        stats = _fidelity(ref_model, test, processor, images, questions, answers_gold)
        caption_nll = [x[0].answer_nll for batch in forced_logp([test], processor, caption_images,
                                                                 [c.prompt for c in caption_items],
                                                                 [c.text for c in caption_items])
                       for x in zip(*batch)]
        report.rows.append({
            "profile": profile.name, "artifact": str(path), "reference": ref_profile.name, "accuracy": acc,
            "recovery": acc["overall"]["accuracy"] / ref_accuracy if ref_accuracy else None,
            **stats,
            "caption_perplexity": fidelity.perplexity(torch.cat(caption_nll)) if caption_nll else None,
        })
        del test
    return report


def _fidelity(ref_model, test, processor, images, prompts, targets) -> dict:
    kl_answer, kl_all, top1_answer, top1_all, nll = [], [], [], [], []
    for ref_items, test_items in forced_logp([ref_model, test], processor, images, prompts, targets):
        for r, t in zip(ref_items, test_items):
            kl_answer.append(fidelity.kl_per_position(r.answer_logp, t.answer_logp))
            kl_all.append(fidelity.kl_per_position(r.text_logp, t.text_logp))
            top1_answer.append(fidelity.top1_agreement(r.answer_logp, t.answer_logp))
            top1_all.append(fidelity.top1_agreement(r.text_logp, t.text_logp))
            nll.append(t.answer_nll)
    return {"kl_answer": fidelity.summarize(torch.cat(kl_answer)), "kl_all_text": fidelity.summarize(torch.cat(kl_all)),
            "top1_answer": float(torch.cat(top1_answer).mean()), "top1_all_text": float(torch.cat(top1_all).mean()),
            "answer_nll": float(torch.cat(nll).mean())}
