"""The HeatmapDistiller's Gaussian heatmap and weighted L2, by hand."""

from __future__ import annotations

import math

import torch

from fd3d.distill.heatmap import gaussian_heatmap, heatmap_l2


def test_heatmap_peaks_at_the_box_centre_and_decays_with_sigma():
    # 8 x 8 cells of 1 m; a 6 m x 8 m box centred on cell (row 5, col 2)'s centre (2.5, 5.5)
    boxes = torch.tensor([[2.5, 5.5, 0.0, 6.0, 8.0, 1.5, 0.0, 0.0, 0.0]])
    heat = gaussian_heatmap(boxes, 8, 8, (0.0, 0.0, 8.0, 8.0))
    assert heat[5, 2] == 1.0 and heat.argmax() == 5 * 8 + 2
    sigma = 5.0 / 3.0  # half-diagonal 5 m / 3
    torch.testing.assert_close(heat[5, 3], torch.tensor(math.exp(-1 / (2 * sigma**2))))
    torch.testing.assert_close(heat[4, 2], heat[6, 2])
    assert gaussian_heatmap(boxes[:0], 8, 8, (0.0, 0.0, 8.0, 8.0)).sum() == 0
    # a small box's sigma is at least one cell
    small = gaussian_heatmap(
        torch.tensor([[2.5, 5.5, 0.0, 0.3, 0.3, 1.0, 0.0, 0.0, 0.0]]), 8, 8, (0.0, 0.0, 8.0, 8.0)
    )
    torch.testing.assert_close(small[5, 3], torch.tensor(math.exp(-0.5)))


def test_heatmap_l2_is_the_weighted_mean_of_squared_errors():
    apprentice = torch.zeros(1, 2, 1, 2)
    expert = torch.tensor([[[[1.0, 2.0]], [[0.0, 1.0]]]])
    heat = torch.tensor([[[1.0, 0.5]]])
    # cells: (1 + 0) * 1 + (4 + 1) * 0.5 = 3.5, divided by 1.5
    torch.testing.assert_close(heatmap_l2(apprentice, expert, heat), torch.tensor(3.5 / 1.5))
