"""The distillation head: input-dependent sampling, box-reference offsets by hand, deep supervision."""

from __future__ import annotations

import math

import pytest
import torch

from fd3d.distill.distill_head import DistillationHead, box_offset_transform
from fd3d.distill.masks import points_in_bev_boxes
from fd3d.modeling.box_coder import encode_boxes
from fd3d.modeling.outputs import CameraGeometry, DetectorFeatures

PC_RANGE = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
EXTENT = (-51.2, -51.2, 51.2, 51.2)


def bev_features(seed: int, channels: int = 32, size: int = 20) -> DetectorFeatures:
    generator = torch.Generator().manual_seed(seed)
    bev = torch.randn(1, channels, size, size, generator=generator)
    geometry = CameraGeometry(torch.eye(4).expand(1, 6, 4, 4), (112, 200))
    return DetectorFeatures(pv=[], pv_strides=[], geometry=geometry, bev=bev, bev_extent=EXTENT)


def head(num_layers: int, box_reference: bool) -> DistillationHead:
    torch.manual_seed(0)
    return DistillationHead(
        "bev", 32, 10, 30, 4, 4, 64, PC_RANGE, num_layers=num_layers, box_reference=box_reference
    )


def test_a_single_static_layer_samples_the_same_places_for_every_input():
    model = head(1, False).eval()
    with torch.no_grad():
        model.layers[0].cross_attn.sampling_offsets.bias.add_(0.3)  # any offsets: still one static layer
    with torch.no_grad():
        a, b = model(bev_features(1)), model(bev_features(2))
    assert torch.equal(a.locations, b.locations)  # the defect of fd3d 0.1 that the layered head removes


def as_if_trained(model: DistillationHead) -> DistillationHead:
    """Give the zero-initialised box corrections and offset layers weights, as training does."""
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for layer, branch in zip(model.layers, model.box_branches, strict=True):
            for linear in (branch[-1], layer.cross_attn.sampling_offsets):
                linear.weight.copy_(0.05 * torch.randn(linear.weight.shape, generator=generator))
    return model


@pytest.mark.parametrize("box_reference", [False, True])
def test_layered_head_samples_where_the_input_leads_it(box_reference):
    model = as_if_trained(head(3, box_reference)).eval()
    with torch.no_grad():
        a, b = model(bev_features(1)), model(bev_features(2))
    assert a.locations.shape == (1, 30, 4, 4, 2)
    assert (a.locations - b.locations).abs().amax() > 1e-3
    assert a.cls_logits.shape == (3, 1, 30, 10) and a.box_code.shape == (3, 1, 30, 10)  # every layer


def test_box_offset_transform_by_hand():
    # a 2 m wide, 4 m long box heading along +y (yaw 90 deg), BEV 100 m x 50 m, K = 4 points
    code = encode_boxes(torch.tensor([[10.0, 5.0, -1.0, 2.0, 4.0, 1.5, math.pi / 2, 0.0, 0.0]]))[None]
    transform = box_offset_transform(code, torch.tensor([100.0, 50.0]), num_points=4)
    along = transform[0, 0] @ torch.tensor([4.0, 0.0])  # the 4th point along the heading: l/2 = 2 m along +y
    across = transform[0, 0] @ torch.tensor([0.0, 4.0])  # across it: w/2 = 1 m along -x
    torch.testing.assert_close(along, torch.tensor([0.0, 2.0 / 50.0]), atol=1e-6, rtol=0)
    torch.testing.assert_close(across, torch.tensor([-1.0 / 100.0, 0.0]), atol=1e-6, rtol=0)


def test_box_reference_starts_with_every_sample_on_the_previous_box():
    """At initialisation the last layer's ring of samples lies inside the box the previous layer predicted."""
    model = as_if_trained(head(2, True)).eval()
    with torch.no_grad():
        model.layers[1].cross_attn.sampling_offsets.weight.zero_()  # the initial ring of the last layer
        out = model(bev_features(3))
    previous = out.box_code[0][0]  # (Q, 10) of layer 0: the last layer's reference boxes
    boxes = torch.cat([previous[:, :2], previous[:, 4:5], previous[:, 2:4].exp(), previous[:, 5:6].exp(),
                       torch.atan2(previous[:, 6], previous[:, 7])[:, None]], 1)  # fmt: skip
    lo, size = torch.tensor(EXTENT[:2]), torch.tensor(EXTENT[2:]) - torch.tensor(EXTENT[:2])
    metric = lo + out.locations[0].flatten(1, 2) * size  # (Q, M*K, 2)
    # the outermost ring touches the box edge: allow float round-off there
    grown = boxes.clone()
    grown[:, 3:5] += 1e-3
    assert points_in_bev_boxes(metric, grown).all()
    # whereas point mode (offsets in BEV pixels, 5.12 m each) puts most samples off a car-sized box
    plain = as_if_trained(head(2, False)).eval()
    with torch.no_grad():
        plain_out = plain(bev_features(3))
    plain_metric = lo + plain_out.locations[0].flatten(1, 2) * size
    plain_boxes = boxes.clone()
    plain_boxes[:, :2] = plain_out.box_code[0][0][:, :2]
    assert points_in_bev_boxes(plain_metric, plain_boxes).float().mean() < 0.5


def test_every_layer_is_supervised_and_bad_layouts_are_named():
    with pytest.raises(ValueError, match="at least one layer"):
        DistillationHead("bev", 32, 10, 30, 4, 4, 64, PC_RANGE, num_layers=0)
    with pytest.raises(ValueError, match="box-reference"):
        DistillationHead("pv", 32, 10, 30, 4, 4, 64, PC_RANGE, box_reference=True)
