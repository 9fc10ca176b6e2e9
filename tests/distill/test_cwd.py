"""Channel-wise divergence (Eq. 8-9) against a hand computation."""

from __future__ import annotations

import math

import pytest
import torch

from fd3d.distill.cwd import channel_wise_divergence


def _softmax(values: list[float], tau: float) -> list[float]:
    exps = [math.exp(v / tau) for v in values]
    return [e / sum(exps) for e in exps]


def test_value_matches_hand_computation():
    tau = 2.0
    student = [[1.0, 2.0, 3.0], [0.0, 0.0, 1.0]]
    teacher = [[3.0, 1.0, 2.0], [2.0, 0.0, 0.0]]
    kl = 0.0
    for s_row, t_row in zip(student, teacher, strict=True):
        p_s, p_t = _softmax(s_row, tau), _softmax(t_row, tau)
        kl += sum(t * (math.log(t) - math.log(s)) for s, t in zip(p_s, p_t, strict=True))
    expected = tau**2 / (2 * 1) * kl  # C = 2, N = 1
    loss = channel_wise_divergence(
        torch.tensor(student, dtype=torch.float64).view(1, 2, 1, 3),
        torch.tensor(teacher, dtype=torch.float64).view(1, 2, 1, 3),
        tau,
    )
    assert loss.item() == pytest.approx(expected, rel=1e-12)


def test_batch_is_averaged():
    torch.manual_seed(0)
    student, teacher = torch.randn(2, 3, 4, 5, 6, dtype=torch.float64)
    per_sample = [channel_wise_divergence(student[i : i + 1], teacher[i : i + 1]) for i in range(3)]
    assert channel_wise_divergence(student, teacher).item() == pytest.approx(sum(per_sample).item() / 3)


def test_zero_when_equal_and_positive_otherwise():
    torch.manual_seed(0)
    teacher = torch.randn(2, 3, 4, 5)
    assert channel_wise_divergence(teacher.clone(), teacher).item() == pytest.approx(0.0, abs=1e-6)
    assert channel_wise_divergence(torch.randn(2, 3, 4, 5), teacher).item() > 0


def test_invariant_to_per_channel_constant():
    torch.manual_seed(0)
    student, teacher = torch.randn(2, 2, 3, 4, 5, dtype=torch.float64)
    shifted = student + torch.tensor([1.5, -3.0, 7.0], dtype=torch.float64).view(1, 3, 1, 1)
    assert channel_wise_divergence(shifted, teacher).item() == pytest.approx(
        channel_wise_divergence(student, teacher).item(), rel=1e-10
    )


def test_gradient_reaches_student():
    torch.manual_seed(0)
    student = torch.randn(1, 2, 3, 3, requires_grad=True)
    channel_wise_divergence(student, torch.randn(1, 2, 3, 3)).backward()
    assert student.grad is not None and student.grad.abs().sum() > 0


def test_shape_mismatch_names_both():
    with pytest.raises(ValueError, match=r"\(1, 2, 3, 3\).*\(1, 2, 3, 4\)"):
        channel_wise_divergence(torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 3, 4))
