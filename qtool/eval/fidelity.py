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
    sampled unit (positions of one question are not independent draws): the ratio estimator's cluster SE."""
    v = torch.cat(per_item).double() if per_item else torch.zeros(0, dtype=torch.float64)
    if v.numel() == 0:
        return {"mean": None, "se": None, "p99": None}
    mean = float(v.mean())
    sums = torch.tensor([float(t.double().sum()) for t in per_item], dtype=torch.float64)
    counts = torch.tensor([t.numel() for t in per_item], dtype=torch.float64)
    n = len(per_item)
    se = (float(((sums - mean * counts) ** 2).sum() * n / (n - 1)) ** 0.5 / float(counts.sum())) if n > 1 else None
    return {"mean": mean, "se": se, "p99": float(torch.quantile(v, 0.99))}


def standard_error(p: float, n: int) -> float:
    """Binomial standard error of an accuracy ``p`` measured on ``n`` questions."""
    return math.sqrt(max(p * (1 - p), 0.0) / n) if n else float("nan")
