"""Answer agreement: a candidate pipeline's greedy answers against the reference pipeline's, same questions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from qtool.eval.dataset import VQAItem


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
