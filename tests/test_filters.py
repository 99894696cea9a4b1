"""Filter metrics on constructed banks whose answers are known, the master key bank and its fit."""
from __future__ import annotations

import pytest
import torch

from mkf_utils.errors import MKFError
from mkf_utils.filters import (best_match, cluster_share, master_key_filters, master_key_fit, sample, sign_normalise,
                               unit_filters)
from mkf_utils.models import create_model

pytestmark = pytest.mark.unit


def bank(n: int = 96, k: int = 7, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, k, k, generator=torch.Generator().manual_seed(seed))


def test_best_match_known_answers():
    x = bank()
    assert best_match(x, x) == 1.0
    assert best_match(x, x[torch.randperm(len(x))]) == 1.0  # order does not matter
    assert best_match(x, -x) == 1.0  # nor sign
    assert best_match(x, 3.0 * x) == 1.0  # nor scale
    chance = best_match(x, bank(seed=1))
    assert 0.2 < chance < 0.6  # unrelated 49-d filters: the best of 96 random cosines
    noisy = best_match(x, x + 0.5 * bank(seed=2))
    assert chance < noisy < 1.0  # a related bank sits between chance and identity
    with pytest.raises(MKFError, match="cannot be compared"):
        best_match(x, bank(k=3))


def test_sign_normalise_puts_the_peak_up_and_the_norm_at_one():
    x = sign_normalise(bank())
    flat = x.reshape(len(x), -1)
    assert torch.allclose(flat.norm(dim=1), torch.ones(len(x)))
    assert (flat.gather(1, flat.abs().argmax(1, keepdim=True)) > 0).all()
    assert torch.equal(sign_normalise(-bank()), x)


def test_master_key_bank_and_fit():
    mk = master_key_filters()
    assert mk.shape == (8, 7, 7) and mk.dtype == torch.float32
    assert torch.isclose(mk[0, 4, 3], torch.tensor(0.936427))  # filter 1's peak, as in the shipped file
    a = torch.tensor([2.0, -0.5, 10.0]).view(3, 1, 1)
    b = torch.tensor([0.3, 1.0, -4.0]).view(3, 1, 1)
    shifted = a * mk[[0, 3, 7]] + b  # linear shifts of bank filters: fully explained
    assert torch.allclose(master_key_fit(shifted), torch.ones(3), atol=1e-5)
    r2 = master_key_fit(bank(512))  # random filters: low, far from 1
    assert 0.0 < r2.mean() < 0.3 and r2.max() < 0.6
    assert master_key_fit(torch.ones(1, 7, 7)).item() == 0.0  # a constant has no variance to explain
    with pytest.raises(MKFError, match="7x7"):
        master_key_fit(bank(k=3))


def test_cluster_share_tells_tight_from_spread():
    centres = bank(4, 5, seed=3)
    tight = centres.repeat(25, 1, 1) + 0.05 * bank(100, 5, seed=4)
    share = cluster_share({"tight": tight, "spread": bank(100, 5, seed=5)}, k=8)  # 4 clusters, 8 centres
    assert share["tight"] > 0.95 and share["spread"] < 0.3


def test_unit_filters_follow_the_units():
    f = unit_filters(create_model("convnext_atto", 4, stem_stride=1))
    assert list(f)[0] == "stages.0.blocks.0.conv_dw" and len(f) == 12
    assert [v.shape[0] for v in f.values()] == [40] * 2 + [80] * 2 + [160] * 6 + [320] * 2
    r = unit_filters(create_model("resnet18", 4), "conv")
    assert len(r) == 17 and tuple(r["conv1"].shape) == (64 * 3, 7, 7) and tuple(r["layer1.0.conv1"].shape) == (64 * 64, 3, 3)
    assert len(sample(r["layer1.0.conv1"], 100)) == 100 and torch.equal(sample(r["conv1"], 1000), r["conv1"])


def test_layer_scales_read_convnext_gamma():
    from mkf_utils.filters import layer_scales

    net = create_model("convnext_atto", 4)
    t = layer_scales({"init": net})
    assert len(t) == 12 and t.layer_scale.eq(1e-6).all()  # timm's ConvNeXt starts every block at 1e-6
    net.stages[3].blocks[1].gamma.data.fill_(-0.5)
    assert layer_scales({"x": net}).layer_scale.iloc[-1] == 0.5
    assert layer_scales({"r": create_model("resnet18", 4)}, "conv").empty  # no layer scale: no rows
