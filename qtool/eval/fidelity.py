"""How far a quantized model's next-token distributions are from the float model's.

All functions take log-probabilities of shape [positions, vocab] for the same
teacher-forced inputs, so every comparison is position by position.
"""

from __future__ import annotations

import math

import torch


def kl_per_position(ref_logp: torch.Tensor, test_logp: torch.Tensor) -> torch.Tensor:
    """KL(ref || test) = sum_v p_ref(v) * (log p_ref(v) - log p_test(v)), one value per position."""
    ref_logp, test_logp = ref_logp.double(), test_logp.double()
    return (ref_logp.exp() * (ref_logp - test_logp)).sum(-1).clamp_min(0.0)


def top1_agreement(ref_logp: torch.Tensor, test_logp: torch.Tensor) -> torch.Tensor:
    """1.0 where both models' most likely next token is the same, else 0.0."""
    return (ref_logp.argmax(-1) == test_logp.argmax(-1)).double()


def token_nll(logp: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of ``targets`` (one per position)."""
    return -logp.double().gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def perplexity(nll: torch.Tensor) -> float:
    return math.exp(float(nll.mean())) if nll.numel() else float("nan")


def summarize(per_item: list[torch.Tensor]) -> dict:
    """Mean and 99th percentile of per-position values, and the mean's standard error with the questions as the
    sampled unit (positions of one question are not independent draws): the ratio estimator's cluster SE.
    Each question's sum and position count are kept, so two precisions can be compared question by question."""
    sums = [float(t.double().sum()) for t in per_item]
    counts = [t.numel() for t in per_item]
    if not sum(counts):
        return {"mean": None, "se": None, "p99": None}
    v = torch.cat(per_item).double()
    mean = sum(sums) / sum(counts)
    return {"mean": mean, "se": _cluster_se(sums, counts, mean), "p99": float(torch.quantile(v, 0.99)),
            "per_question": sums, "positions": counts}


def paired_difference(a: dict, b: dict) -> dict | None:
    """Mean of ``a`` minus mean of ``b`` (two ``summarize`` results over the same questions and positions) with
    the standard error of that difference. Pairing removes what the two precisions share (hard questions are
    hard for both), so a gap far inside either mean's own error can still be resolved. None if either summary
    lacks per-question values (records written before they were kept)."""
    if "per_question" not in a or "per_question" not in b:
        return None
    if a["positions"] != b["positions"]:
        raise ValueError("paired KL summaries cover different questions or positions")
    diffs = [x - y for x, y in zip(a["per_question"], b["per_question"])]
    diff = sum(diffs) / sum(a["positions"])
    return {"diff": diff, "se": _cluster_se(diffs, a["positions"], diff)}


def _cluster_se(sums: list[float], counts: list[int], mean: float) -> float | None:
    n = len(sums)
    if n < 2:
        return None
    spread = sum((s - mean * c) ** 2 for s, c in zip(sums, counts)) * n / (n - 1)
    return spread ** 0.5 / sum(counts)


def standard_error(p: float, n: int) -> float:
    """Binomial standard error of an accuracy ``p`` measured on ``n`` questions."""
    return math.sqrt(max(p * (1 - p), 0.0) / n) if n else float("nan")
