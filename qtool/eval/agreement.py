"""Answer agreement: a candidate pipeline's greedy answers against the reference pipeline's, same questions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from qtool import artifacts as registry
from qtool import profiles
from qtool.calibration.images import load_image
from qtool.eval.dataset import TEST_SET, VQAItem, load_vqa
from qtool.models.checkpoint import CheckpointInfo, checkpoint_of


@dataclass(frozen=True)
class Agreement:
    questions: int
    same: int                     # candidate answer == reference answer
    rate: float
    accuracy_reference: float     # vs the dataset's answers
    accuracy_candidate: float
    differing: tuple[str, ...]    # ids of the first questions answered differently

    def to_dict(self) -> dict:
        return asdict(self)


def agreement(questions: Sequence[VQAItem], reference: Sequence[str], candidate: Sequence[str],
              keep: int = 20) -> Agreement:
    same = [a == b for a, b in zip(reference, candidate)]
    n = max(len(questions), 1)
    return Agreement(
        questions=len(questions), same=sum(same), rate=sum(same) / n,
        accuracy_reference=sum(a == q.answer for a, q in zip(reference, questions)) / n,
        accuracy_candidate=sum(a == q.answer for a, q in zip(candidate, questions)) / n,
        differing=tuple(q.id for q, s in zip(questions, same) if not s)[:keep])


def heldout_agreement(model: str | Path | CheckpointInfo, folder: str | Path, precision: str = "fp32",
                      limit: int | None = None) -> Agreement:
    """Held-out answers with the ONNX vision tower in ``folder`` against the all-torch float32 model's."""
    info = checkpoint_of(model)
    profile = profiles.load_profile(f"onnx-vision-{precision}")
    return answer_agreement(info, {"onnx": (profile, Path(folder))}, limit, rows=False)["onnx"]


def answer_agreement(source: CheckpointInfo, exported: dict[str, tuple[profiles.Profile, Path]],
                     limit: int | None, rows: bool = True):
    """Held-out answers of each exported variant, through its own consumer, against the float32 torch
    model's on the same questions: a table row per variant (or the Agreement itself with ``rows=False``)."""
    if not exported:
        return [] if rows else {}
    questions = load_vqa(TEST_SET, limit)
    images = {p: load_image(p) for p in dict.fromkeys(q.image for q in questions)}
    asked = ([images[q.image] for q in questions], [q.question for q in questions])
    float32 = profiles.load_profile("fp32")
    reference = registry.load(source.path, float32, source.path).answer(*asked)
    results = {}
    for name, (profile, folder) in exported.items():
        candidate = registry.load(folder, profile, source.path, dtype="float32").answer(*asked)
        results[name] = (profile, agreement(questions, reference, candidate))
    if not rows:
        return {name: result for name, (_, result) in results.items()}
    return [{"variant": name, "runtime": registry.kind_of(profile).consumer, "questions": r.questions,
             "answers = float32": f"{r.rate:.1%}", "accuracy": f"{r.accuracy_candidate:.1%}",
             "float32 accuracy": f"{r.accuracy_reference:.1%}"} for name, (profile, r) in results.items()]
