"""Transfer units: exact, forward-ordered lists for the architectures the figures use."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from mkf_utils.errors import MKFError
from mkf_utils.models import create_model
from mkf_utils.units import following_norms, transfer_units

pytestmark = pytest.mark.unit

RESNET18_CONV = ["conv1"] + [f"layer{s}.{b}.conv{c}" for s in (1, 2, 3, 4) for b in (0, 1) for c in (1, 2)]
RESNET50_CONV = ["conv1"] + [f"layer{s}.{b}.conv{c}" for s, nb in zip((1, 2, 3, 4), (3, 4, 6, 3))
                             for b in range(nb) for c in (1, 2, 3)]


def _dw(depths):
    return [f"stages.{s}.blocks.{b}.conv_dw" for s, d in enumerate(depths) for b in range(d)]


@pytest.mark.parametrize("name,kind,expected", [
    ("resnet18", "conv", RESNET18_CONV),
    ("resnet18", "block", [f"layer{s}.{b}" for s in (1, 2, 3, 4) for b in (0, 1)]),
    ("resnet18", "depthwise", []),
    ("resnet18", "pointwise", []),  # its 1x1 convs are all shortcut projections
    ("resnet50", "conv", RESNET50_CONV),
    ("resnet50", "pointwise", [u for u in RESNET50_CONV if u.endswith(("conv1", "conv3")) and u != "conv1"]),
    ("resnet50", "block", [u.rsplit(".", 1)[0] for u in RESNET50_CONV[1::3]]),
    ("convnext_atto", "depthwise", _dw((2, 2, 6, 2))),
    ("convnext_atto", "pointwise", [f"{u[:-len('conv_dw')]}mlp.fc{i}" for u in _dw((2, 2, 6, 2)) for i in (1, 2)]),
    ("convnext_tiny", "depthwise", _dw((3, 3, 9, 3))),
    ("convnext_tiny", "block", [u[:-len(".conv_dw")] for u in _dw((3, 3, 9, 3))]),
])
def test_pinned_unit_lists(name, kind, expected):
    assert transfer_units(create_model(name, 10), kind) == expected


def test_small_input_stem_keeps_the_units_and_state_dict_shapes():
    import timm

    for name in ("resnet18", "convnext_atto"):
        small, stock = create_model(name, 10, stem_stride=1), timm.create_model(name, num_classes=10)
        assert transfer_units(small, "conv") == transfer_units(stock, "conv")
        stock.load_state_dict(small.state_dict())  # a small-input checkpoint loads into timm's model
        feats = small.forward_features(torch.zeros(1, 3, 32, 32))
        assert feats.shape[-1] == 4  # last stage sees 4x4 maps at 32 px


def test_order_is_execution_order_not_registration_order():
    class Reversed(nn.Module):
        def __init__(self):
            super().__init__()
            self.late = nn.Conv2d(8, 8, 3, padding=1, groups=8)
            self.early = nn.Conv2d(8, 8, 3, padding=1, groups=8)

        def forward(self, x):
            return self.late(self.early(x))

    assert transfer_units(Reversed(), "depthwise") == ["early", "late"]


def test_following_norms():
    m = create_model("convnext_atto", 10)
    units = transfer_units(m, "depthwise")
    assert following_norms(m, units[:1]) == {units[0]: "stages.0.blocks.0.norm"}
    m = create_model("resnet50", 10)
    assert following_norms(m, ["layer1.0.conv3"]) == {"layer1.0.conv3": "layer1.0.bn3"}


def test_unknown_kind_and_model():
    with pytest.raises(MKFError, match="unknown unit kind 'spatial'"):
        transfer_units(create_model("resnet18", 10), "spatial")
    with pytest.raises(MKFError, match="unknown model 'convnext_nano_x'.*convnext_nano"):
        create_model("convnext_nano_x", 10)

