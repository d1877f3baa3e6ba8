"""KL / agreement / perplexity against hand-computed distributions."""

import math

import pytest
import torch

from qtool.eval import fidelity


def logp(*rows):
    return torch.tensor(rows, dtype=torch.float64).log()


def test_kl_matches_hand_computation():
    p = logp([0.5, 0.25, 0.25])
    q = logp([0.25, 0.5, 0.25])
    expected = 0.5 * math.log(0.5 / 0.25) + 0.25 * math.log(0.25 / 0.5) + 0.25 * math.log(1.0)
    assert fidelity.kl_per_position(p, q).item() == pytest.approx(expected, abs=1e-12)
    # KL is not symmetric in general
    r = logp([0.7, 0.2, 0.1])
    assert fidelity.kl_per_position(p, r).item() != pytest.approx(fidelity.kl_per_position(r, p).item())


def test_kl_of_a_distribution_with_itself_is_zero():
    p = torch.log_softmax(torch.randn(7, 11, dtype=torch.float64), -1)
    assert torch.all(fidelity.kl_per_position(p, p) == 0)
    assert fidelity.top1_agreement(p, p).mean().item() == 1.0


def test_top1_agreement_counts_matching_argmax():
    p = logp([0.6, 0.4], [0.3, 0.7], [0.5 + 1e-9, 0.5 - 1e-9])
    q = logp([0.9, 0.1], [0.8, 0.2], [0.4, 0.6])
    assert fidelity.top1_agreement(p, q).tolist() == [1.0, 0.0, 0.0]


def test_nll_and_perplexity():
    p = logp([0.5, 0.5], [0.25, 0.75])
    nll = fidelity.token_nll(p, torch.tensor([0, 1]))
    assert nll.tolist() == pytest.approx([math.log(2), -math.log(0.75)])
    assert fidelity.perplexity(nll) == pytest.approx(math.exp((math.log(2) - math.log(0.75)) / 2))


def test_summary_and_standard_error():
    values = torch.arange(101, dtype=torch.float64)
    s = fidelity.summarize([values[:50], values[50:]])
    assert s["mean"] == pytest.approx(50.0) and s["p99"] == pytest.approx(99.0)
    assert fidelity.standard_error(0.9, 100) == pytest.approx(0.03)
    assert fidelity.summarize([])["mean"] is None


def test_kl_standard_error_counts_questions_not_positions():
    """Two questions of 1000 positions each: the spread between the questions sets the error, not 2000 draws."""
    flat = [torch.full((1000,), 1.0), torch.full((1000,), 3.0)]
    s = fidelity.summarize(flat)
    assert s["mean"] == pytest.approx(2.0)
    # per-question sums 1000 and 3000 around 2.0 * 1000: sqrt((1000^2 + 1000^2) * 2 / 1) / 2000 = 1.0
    assert s["se"] == pytest.approx(1.0)
    assert fidelity.summarize([torch.full((4,), 2.0)] * 3)["se"] == 0.0


def test_paired_difference_removes_what_both_precisions_share():
    """Per-question KL that swings between questions but differs by a constant 0.1 per position: each mean has a
    large error, their paired difference none."""
    hard_and_easy = [torch.full((10,), v, dtype=torch.float64) for v in (1.0, 5.0, 2.0, 9.0)]
    a = fidelity.summarize(hard_and_easy)
    b = fidelity.summarize([t + 0.1 for t in hard_and_easy])
    d = fidelity.paired_difference(a, b)
    assert d["diff"] == pytest.approx(-0.1) and d["se"] == pytest.approx(0.0, abs=1e-12)
    assert a["se"] > 1.0
    # differences that vary: d_i = -1, +1 per position on two questions of 2 positions -> mean 0,
    # se = sqrt(((-2)^2 + 2^2) * 2 / 1) / 4 = 1.0
    c = fidelity.summarize([torch.zeros(2), torch.zeros(2)])
    e = fidelity.summarize([torch.ones(2), -torch.ones(2)])
    d = fidelity.paired_difference(c, e)
    assert d["diff"] == pytest.approx(0.0) and d["se"] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        fidelity.paired_difference(a, fidelity.summarize(hard_and_easy[:3]))
    assert fidelity.paired_difference({"mean": 1.0, "se": 0.1, "p99": 2.0}, a) is None
