"""fd3d.modeling.evaluating: eval mode and no gradient inside, each module's own mode back after."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fd3d.modeling.evaluating import evaluating


def _net() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5), nn.BatchNorm1d(3))


def test_modes_are_restored_and_no_gradient_is_recorded():
    training, frozen = _net().train(), _net().eval()
    x = torch.ones(4, 3, requires_grad=True)
    with evaluating(training, frozen):
        assert not training.training and not any(m.training for m in training.modules())
        assert not frozen.training
        y = training(x)
        assert not y.requires_grad and not torch.is_grad_enabled()
        # eval mode: dropout is off and batch norm uses its running statistics, so repeats agree
        assert torch.equal(training(x), y)
    assert training.training and all(m.training for m in training.modules())
    assert not frozen.training
    assert torch.is_grad_enabled() and training(x).requires_grad


def test_modes_are_restored_after_an_exception():
    net = _net().train()
    with pytest.raises(RuntimeError, match="boom"), evaluating(net):
        raise RuntimeError("boom")
    assert net.training and torch.is_grad_enabled()


def test_a_train_override_is_honoured_on_restore():
    class KeepsExpertFrozen(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.student, self.expert = _net(), _net()

        def train(self, mode: bool = True) -> KeepsExpertFrozen:
            super().train(mode)
            self.expert.eval()
            return self

    model = KeepsExpertFrozen().train()
    with evaluating(model):
        assert not model.student.training
    assert model.student.training and not model.expert.training
