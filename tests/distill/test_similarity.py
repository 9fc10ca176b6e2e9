"""Linear CKA against the HSIC formula with an explicit centring matrix, and its invariances."""

from __future__ import annotations

import pytest
import torch

from fd3d.distill.similarity import linear_cka


def naive_cka(a: torch.Tensor, b: torch.Tensor) -> float:
    """HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)) with K = A A^T, L = B B^T and H = I - 11^T / n."""
    n = a.shape[0]
    h = torch.eye(n, dtype=torch.float64) - torch.ones(n, n, dtype=torch.float64) / n
    k, l_ = a.double() @ a.double().T, b.double() @ b.double().T

    def hsic(x, y):
        return torch.trace(x @ h @ y @ h)

    return float(hsic(k, l_) / torch.sqrt(hsic(k, k) * hsic(l_, l_)))


def test_linear_cka_equals_the_hsic_formula():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(40, 5, generator=gen), torch.randn(40, 7, generator=gen)
    b[:, :3] += 2 * a[:, :3]  # partly related
    assert linear_cka(a, b) == pytest.approx(naive_cka(a, b), rel=1e-10)
    assert 0.1 < linear_cka(a, b) < 0.99


def test_linear_cka_is_one_up_to_rotation_scale_and_shift_and_low_for_unrelated():
    gen = torch.Generator().manual_seed(1)
    a = torch.randn(200, 6, generator=gen)
    rotation, _ = torch.linalg.qr(torch.randn(6, 6, generator=gen))
    assert linear_cka(a, 3.0 * a @ rotation + 5.0) == pytest.approx(1.0, abs=1e-9)
    assert linear_cka(a, torch.randn(200, 6, generator=gen)) < 0.1


def test_different_item_counts_are_refused():
    with pytest.raises(ValueError, match="same items: 4 vs 5"):
        linear_cka(torch.zeros(4, 2), torch.zeros(5, 2))
