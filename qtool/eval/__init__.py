"""``evaluate``: what each precision costs in accuracy, measured offline against the float model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from qtool import artifacts as registry
from qtool import machine, profiles
from qtool.calibration.images import load_image
from qtool.errors import QtoolError
from qtool.eval import fidelity
from qtool.eval.dataset import VQAItem, default_captions, default_dataset, load_captions, load_vqa
from qtool.eval.forced import forced_logp
from qtool.models.checkpoint import CheckpointInfo, checkpoint_of

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


def run(model: str | Path | CheckpointInfo, profile_names: list[str], *, dataset: Path | None = None,
        captions: Path | None = None, limit: int | None = None, calib: Path | None = None, samples: int | None = None,
        status: Status | None = None, progress=None, artifacts: dict[str, Path] | None = None) -> EvalReport:
    """Evaluate each profile (a name, a TOML file or an artifact folder qtool built from ``model``); the first float
    profile (bf16 if none is named) is the reference. ``artifacts`` maps profile names to already-built artifacts.

    Every profile answers through its own consumer (transformers, llama.cpp, ONNX Runtime vision): accuracy
    and agreement with the reference's answers. Kinds whose consumer exposes torch logits also get the
    teacher-forced fidelity columns (KL, top-1, answer NLL, caption perplexity); the others leave them empty.
    """
    if not profile_names:
        raise QtoolError("no profiles given", "pass e.g. --profiles bf16,gptq-int4")
    say = status or (lambda _m: None)
    info = checkpoint_of(model)
    chosen, given = registry.resolve(info, profile_names, samples)
    artifacts = {**given, **(artifacts or {})}
    if not any(isinstance(p, profiles.FloatProfile) for p in chosen):
        chosen.insert(0, profiles.load_profile("bf16"))
    ref_profile = next(p for p in chosen if isinstance(p, profiles.FloatProfile))
    dataset = Path(dataset) if dataset else default_dataset(info.path)
    items = load_vqa(dataset, limit)
    captions_file = Path(captions) if captions else default_captions(dataset)
    caption_items = load_captions(captions_file, limit) if captions_file else []
    images = [load_image(it.image) for it in items]
    caption_images = [load_image(c.image) for c in caption_items]
    questions = [it.question for it in items]
    label = str(info.path) if isinstance(model, CheckpointInfo) else str(model)
    report = EvalReport(label, str(dataset), len(items), machine.info())
    reference = registry.load(info.path, ref_profile, info.path)
    ref_accuracy, ref_answers = None, None
    for profile in [ref_profile] + [p for p in chosen if p is not ref_profile]:
        say(f"{profile.name}: preparing")
        path = artifacts.get(profile.name) or registry.artifact_for(info, profile, calib=calib, progress=progress)
        kind = registry.kind_of(profile)
        test = reference if profile is ref_profile else registry.load(path, profile, info.path)
        say(f"{profile.name}: answering {len(items)} questions with {kind.consumer}")
        answers = test.answer(images, questions)
        ref_answers = ref_answers if ref_answers is not None else answers
        acc = accuracy(items, answers)
        ref_accuracy = ref_accuracy if ref_accuracy is not None else acc["overall"]["accuracy"]
        row = {"profile": profile.name, "artifact": str(path), "reference": ref_profile.name, "accuracy": acc,
               "recovery": acc["overall"]["accuracy"] / ref_accuracy if ref_accuracy else None,
               "consumer": kind.consumer, "kernel": test.kernel,
               "same_answers": sum(a == b for a, b in zip(answers, ref_answers)) / max(len(answers), 1)}
        if kind.teacher_forced:
            say(f"{profile.name}: teacher-forced fidelity against {ref_profile.name}")
            row.update(_fidelity(reference.model, test.model, reference.processor, images, questions,
                                 [it.answer for it in items]))
            caption_nll = [x[0].answer_nll for batch in forced_logp([test.model], reference.processor, caption_images,
                                                                     [c.prompt for c in caption_items],
                                                                     [c.text for c in caption_items])
                           for x in zip(*batch)]
            row["caption_perplexity"] = fidelity.perplexity(torch.cat(caption_nll)) if caption_nll else None
        else:
            row.update(dict.fromkeys(FIDELITY_FIELDS))
        report.rows.append(row)
        del test
    return report


FIDELITY_FIELDS = ("kl_answer", "kl_all_text", "top1_answer", "top1_all_text", "answer_nll", "caption_perplexity")


def _fidelity(ref_model, test, processor, images, prompts, targets) -> dict:
    kl_answer, kl_all, top1_answer, top1_all, nll = [], [], [], [], []
    for ref_items, test_items in forced_logp([ref_model, test], processor, images, prompts, targets):
        for r, t in zip(ref_items, test_items):
            kl_answer.append(fidelity.kl_per_position(r.answer_logp, t.answer_logp))
            kl_all.append(fidelity.kl_per_position(r.text_logp, t.text_logp))
            top1_answer.append(fidelity.top1_agreement(r.answer_logp, t.answer_logp))
            top1_all.append(fidelity.top1_agreement(r.text_logp, t.text_logp))
            nll.append(t.answer_nll)
    return {"kl_answer": fidelity.summarize(kl_answer), "kl_all_text": fidelity.summarize(kl_all),
            "top1_answer": float(torch.cat(top1_answer).mean()), "top1_all_text": float(torch.cat(top1_all).mean()),
            "answer_nll": float(torch.cat(nll).mean())}
