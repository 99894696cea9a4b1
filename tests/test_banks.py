"""Controls for depthwise filters (mkf_utils.banks and the bank, permute and radial transfer modes): constructed
banks come out as built, frozen banks stay bit-identical through training, a permutation is a permutation."""
from __future__ import annotations

import pytest
import torch
from test_transfer import _source, _train_steps

from mkf_utils.banks import cycle_bank, make_bank, radial_profile, radial_random, rings
from mkf_utils.config import load_config
from mkf_utils.errors import MKFError
from mkf_utils.treatments import treatment_spec
from mkf_utils.filters import master_key_filters, sign_normalise, unit_filters
from mkf_utils.models import create_model
from mkf_utils.transfer import apply_transfer, source_need

pytestmark = pytest.mark.unit


def _same_up_to_sign_and_scale(a: torch.Tensor, b: torch.Tensor) -> bool:
    a, b = a.flatten(), b.flatten()
    return abs(float(torch.dot(a, b) / (a.norm() * b.norm()))) > 0.9999


def test_cycle_bank_gives_channel_c_filter_c_mod_k_at_the_inits_scale():
    bank = torch.randn(3, 7, 7, generator=torch.Generator().manual_seed(0))
    init = 0.02 * torch.randn(10, 1, 7, 7, generator=torch.Generator().manual_seed(1))
    w = cycle_bank(init, bank)
    assert w.shape == init.shape and torch.isclose(w.std(), init.std())
    for c in range(10):
        assert _same_up_to_sign_and_scale(w[c, 0], bank[c % 3])
    assert len(torch.unique(w.flatten(1), dim=0)) == 3


def test_centres_of_a_two_filter_source_are_those_filters():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 5, 5, generator=g)
    source = torch.cat([a + 0.01 * torch.randn(30, 5, 5, generator=g), -b + 0.01 * torch.randn(30, 5, 5, generator=g)])
    centres = make_bank("centres", 2, source=source)
    assert {_same_up_to_sign_and_scale(c, a) for c in centres} == {True, False}
    assert any(_same_up_to_sign_and_scale(c, b) for c in centres)


def test_exemplars_are_real_source_filters_nearest_the_centres():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 5, 5, generator=g)
    source = torch.cat([a + 0.1 * torch.randn(30, 5, 5, generator=g), -b + 0.1 * torch.randn(30, 5, 5, generator=g)])
    exemplars = make_bank("exemplars", 2, source=source)
    normed = sign_normalise(source).flatten(1)
    for e, c in zip(exemplars.flatten(1), make_bank("centres", 2, source=source).flatten(1)):
        i = int((normed @ c).argmax())
        assert torch.equal(e, normed[i])  # the source filter most like its centre, not the centre itself
        assert not torch.allclose(e, c, atol=1e-3)


def test_named_banks_and_their_limits():
    init = torch.randn(40, 7, 7, generator=torch.Generator().manual_seed(0))
    assert torch.equal(make_bank("master-key", 3), master_key_filters()[:3])
    rand = make_bank("random", 4, init=init, seed=1)
    assert all(any(torch.equal(r, f) for f in init) for r in rand)  # drawn from the init's own filters
    assert not torch.equal(rand, make_bank("random", 4, init=init, seed=2))
    delta = make_bank("identity", 1, init=init)
    assert delta.sum() == 1 and delta[0, 3, 3] == 1
    with pytest.raises(MKFError, match="bank_size=9 is out of range for the master-key bank.*1..8"):
        make_bank("master-key", 9)
    with pytest.raises(MKFError, match="bank_size=2 is out of range for the identity bank"):
        make_bank("identity", 2, init=init)
    with pytest.raises(MKFError, match="centres needs a source run"):
        make_bank("centres", 2)
    with pytest.raises(MKFError, match="unknown transfer.bank 'mk'"):
        make_bank("mk", 2)


def test_radial_random_has_the_reference_profile_and_not_its_filters():
    ref = torch.randn(64, 1, 7, 7) * torch.exp(-rings(7, 7).float())  # energy falling away from the centre
    drawn = radial_random(ref, torch.Generator().manual_seed(0))
    assert torch.allclose(radial_profile(drawn), radial_profile(ref), rtol=1e-5)
    assert radial_profile(ref)[0] > 10 * radial_profile(ref)[-1]
    assert not torch.allclose(drawn, ref)


@pytest.mark.parametrize("bank,k", [("centres", 2), ("exemplars", 3), ("random", 1), ("identity", 1), ("master-key", 4)])
def test_a_frozen_bank_stays_bit_identical_through_training(bank, k):
    torch.manual_seed(2)
    model = create_model("convnext_atto", 6, stem_stride=2)
    report = apply_transfer(model, _source(), "depthwise", 12, mode="bank-freeze", bank=bank, bank_size=k,
                            assign="cycle", seed=0)
    frozen = {u: f.clone() for u, f in unit_filters(model).items()}
    for f in frozen.values():
        assert len(torch.unique(f.flatten(1), dim=0)) == k  # k distinct filters, cycled
    _train_steps(model)
    assert all(torch.equal(f, frozen[u]) for u, f in unit_filters(model).items())
    assert len(report.frozen) == 24  # weight and bias of every unit


@pytest.mark.parametrize("bank,k", [("identity", 1), ("exemplars", 4)])
def test_a_bank_freezes_mobilenet_whose_3x3_depthwise_convs_are_its_only_spatial_ops(bank, k):
    """MobileNetV2 (3x3 kernels, stride-2 depthwise convs, a BatchNorm after each): every one of its 17 depthwise
    units frozen to the bank stays bit-identical while the BatchNorms after them train; the 7x7 master key bank
    does not fit it."""
    torch.manual_seed(0)
    model = create_model("mobilenetv2_050", 6, stem_stride=1)
    report = apply_transfer(model, _source("mobilenetv2_050"), "depthwise", 17, mode="bank-freeze", bank=bank,
                            bank_size=k, assign="cycle", seed=0)
    frozen = {u: f.clone() for u, f in unit_filters(model).items()}
    assert len(frozen) == 17 and all(f.shape[1:] == (3, 3) for f in frozen.values())
    assert len(report.frozen) == 17  # the weight of every unit (no bias: a BatchNorm follows)
    norm = model.blocks[1][0].bn2.weight.detach().clone()  # the BatchNorm after a stride-2 depthwise conv
    _train_steps(model)
    assert all(torch.equal(f, frozen[u]) for u, f in unit_filters(model).items())
    assert not torch.equal(model.blocks[1][0].bn2.weight, norm)
    with pytest.raises(MKFError, match="master key filters are 7x7"):
        apply_transfer(create_model("mobilenetv2_050", 6, stem_stride=1), None, "depthwise", 17, mode="bank-freeze",
                       bank="master-key", bank_size=4, assign="cycle")


def test_permute_freeze_is_a_permutation_of_the_source_channels():
    src = _source()
    model = create_model("convnext_atto", 6, stem_stride=2)
    report = apply_transfer(model, src, "depthwise", 12, mode="permute-freeze", seed=0)
    sd = model.state_dict()
    for u in report.units:
        w, s = sd[f"{u}.weight"].flatten(1), src[f"{u}.weight"].flatten(1)
        match = (w[:, None, :] == s[None, :, :]).all(-1).int()  # match[i, j]: channel i holds source filter j
        assert (match.sum(0) == 1).all() and (match.sum(1) == 1).all()  # a permutation
        perm = match.argmax(1)
        assert not torch.equal(perm, torch.arange(len(perm)))
        assert torch.equal(sd[f"{u}.bias"], src[f"{u}.bias"][perm])  # the bias goes with its filter
    _train_steps(model)
    assert all(torch.equal(model.state_dict()[k], sd[k]) for k in report.frozen)


def test_treatments_and_configs_say_which_need_a_source():
    assert treatment_spec("B-centres k=2") == ({"mode": "bank-freeze", "bank": "centres", "bank_size": 2}, "self")
    assert treatment_spec("identity")[1] is None and treatment_spec("permuted AnB")[1] == "other"
    assert source_need("bank-freeze", "random", "fit") == "required"
    with pytest.raises(MKFError, match="unknown treatment 'centres k=2'"):
        treatment_spec("centres k=2")
    with pytest.raises(MKFError, match="transfer.bank=centres reads a source, but transfer.source is not set"):
        load_config(overrides=["transfer.n=2", "transfer.mode=bank-freeze", "transfer.bank=centres"])
    with pytest.raises(MKFError, match="transfer.bank_size=0"):
        load_config(overrides=["transfer.n=2", "transfer.mode=bank-freeze", "transfer.bank_size=0"])
    with pytest.raises(MKFError, match="radial-freeze replaces depthwise filters, not 'conv'"):
        load_config(overrides=["transfer.n=2", "transfer.mode=radial-freeze", "transfer.units=conv",
                               "transfer.source=abc"])
