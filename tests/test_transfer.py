"""Copy and freeze: frozen tensors stay bit-identical through training; options do what they say."""
from __future__ import annotations

import pytest
import torch
from timm.optim import create_optimizer_v2

from mkf_utils.errors import MKFError
from mkf_utils.models import create_model
from mkf_utils.transfer import apply_transfer, select_units

pytestmark = pytest.mark.unit


def _train_steps(model, steps=3, classes=6):
    opt = create_optimizer_v2(model, "sgd", lr=0.5, weight_decay=5e-4, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    model.train()  # frozen norms stay in eval mode by themselves
    for _ in range(steps):
        x, y = torch.randn(8, 3, 32, 32, generator=g), torch.randint(0, classes, (8,), generator=g)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()


def _source(name="convnext_atto", seed=1):
    torch.manual_seed(seed)
    return {k: v.clone() for k, v in create_model(name, 4, stem_stride=2).state_dict().items()}


def test_copy_freeze_keeps_frozen_bit_identical_and_trains_the_rest():
    src = _source()
    torch.manual_seed(2)
    model = create_model("convnext_atto", 6, stem_stride=2)
    report = apply_transfer(model, src, units="depthwise", n=5)
    assert report.units == [f"stages.{s}.blocks.{b}.conv_dw" for s, b in ((0, 0), (0, 1), (1, 0), (1, 1), (2, 0))]
    assert report.frozen == [f"{u}.{p}" for u in report.units for p in ("weight", "bias")]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    _train_steps(model)
    after = model.state_dict()
    for k in report.frozen:
        assert torch.equal(after[k], src[k])
    trainable = [k for k, p in model.named_parameters() if p.requires_grad]
    changed = [k for k in trainable if not torch.equal(after[k], before[k])]
    assert "stages.2.blocks.1.conv_dw.weight" in trainable and "stem.0.weight" in trainable
    assert len(changed) >= 0.9 * len(trainable)  # a few (e.g. layer-scale gammas) may move by < 1 ulp
    assert not torch.equal(after["stages.2.blocks.1.conv_dw.weight"], src["stages.2.blocks.1.conv_dw.weight"])


def test_norm_freeze_fixes_batchnorm_statistics():
    src = _source("resnet18")
    model = create_model("resnet18", 6, stem_stride=2)
    report = apply_transfer(model, src, units="conv", n=3, norm="freeze")
    assert "bn1.running_mean" in report.copied and "layer1.0.bn2.weight" in report.frozen
    _train_steps(model)
    after = model.state_dict()
    for k in ("bn1.running_mean", "bn1.running_var", "layer1.0.bn1.running_mean", "layer1.0.conv2.weight"):
        assert torch.equal(after[k], src[k]), k
    assert not torch.equal(after["layer1.1.bn1.running_mean"], src["layer1.1.bn1.running_mean"])
    assert not model.layer1[0].bn1.training and model.layer1[1].bn1.training  # model.train() cannot undo it
    plain = create_model("resnet18", 6, stem_stride=2)
    plain.load_state_dict(after)  # the same keys as a stock model


def test_random_freeze_copies_nothing_and_freezes_the_init():
    model = create_model("convnext_atto", 6, stem_stride=2)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    report = apply_transfer(model, None, units="depthwise", n=12, mode="random-freeze")
    assert report.copied == [] and len(report.frozen) == 24
    _train_steps(model)
    assert all(torch.equal(model.state_dict()[k], init[k]) for k in report.frozen)


def test_copy_train_copies_but_trains():
    src = _source()
    model = create_model("convnext_atto", 6, stem_stride=2)
    report = apply_transfer(model, src, units="depthwise", n=2, mode="copy-train")
    assert report.frozen == [] and len(report.copied) == 4
    k = report.copied[0]
    assert torch.equal(model.state_dict()[k], src[k])
    _train_steps(model)
    assert not torch.equal(model.state_dict()[k], src[k])


def test_bias_train_moves_only_the_filters():
    src = _source()
    model = create_model("convnext_atto", 6, stem_stride=2)
    report = apply_transfer(model, src, units="depthwise", n=1, bias="train")
    assert report.copied == report.frozen == ["stages.0.blocks.0.conv_dw.weight"]
    assert model.stages[0].blocks[0].conv_dw.bias.requires_grad


def test_reverse_freezing_takes_the_last_units():
    model = create_model("resnet18", 6)
    report = apply_transfer(model, _source("resnet18"), units="block", n=2, end="last")
    assert report.units == ["layer4.0", "layer4.1"]
    assert "layer4.0.downsample.0.weight" in report.frozen  # a block carries its shortcut
    assert report.frozen_fraction > 0.7  # ResNet-18's last two blocks hold most of its weights


def test_separable_units_freeze_a_blocks_depthwise_and_pointwise_filters_together_and_train_its_norm():
    src = _source()
    model = create_model("convnext_atto", 6, stem_stride=2)
    report = apply_transfer(model, src, units="separable", n=2)
    assert report.units == ["stages.0.blocks.0", "stages.0.blocks.1"] and report.n_units == 12
    assert report.frozen == [f"stages.0.blocks.{b}.{layer}.{p}" for b in (0, 1)
                             for layer in ("conv_dw", "mlp.fc1", "mlp.fc2") for p in ("weight", "bias")]
    _train_steps(model)
    after = model.state_dict()
    for k in report.frozen:
        assert torch.equal(after[k], src[k]), k
    for k in ("stages.0.blocks.0.norm.weight", "stages.0.blocks.1.gamma"):  # the block's norm and layer scale
        assert model.get_parameter(k).requires_grad and not torch.equal(after[k], src[k]), k
    resnet = apply_transfer(create_model("resnet18", 6), _source("resnet18"), units="separable", n=3, bias="train")
    assert resnet.frozen == ["layer1.0.conv1.weight", "layer1.0.conv2.weight", "layer1.1.conv1.weight",
                             "layer1.1.conv2.weight", "layer2.0.conv1.weight", "layer2.0.conv2.weight"]  # no shortcut


def test_bad_transfers_name_the_fix():
    with pytest.raises(MKFError, match="transfer.n=13 is out of range.*12 units.*0..12"):
        apply_transfer(create_model("convnext_atto", 6), _source(), units="depthwise", n=13)
    with pytest.raises(MKFError, match="has no 'depthwise' units"):
        apply_transfer(create_model("resnet18", 6), _source("resnet18"), units="depthwise", n=1)
    with pytest.raises(MKFError, match="does not fit the model: stem.0.weight"):
        apply_transfer(create_model("convnext_femto", 6), _source(), units="conv", n=1)
    with pytest.raises(MKFError, match="unknown transfer.mode"):
        apply_transfer(create_model("convnext_atto", 6), _source(), n=1, mode="freeze")
    assert select_units(list("abcd"), 0) == []


def test_runs_of_one_seed_and_target_start_from_one_init():
    """Base, AnB, BnB and random-frozen nets trained on one half with one seed start from the same random
    net, so paired differences compare only what was copied or trained. The head's size is drawn before
    timm re-initialises the body, so nets with another class count (the other half's base) start elsewhere."""
    from conftest import tiny_config
    from mkf_utils.train import setup

    init = lambda *o: setup(tiny_config("data.split=random-b:0", *o)).model.state_dict()
    base = init("seed=3")
    frozen = init("seed=3", "transfer.mode=random-freeze", "transfer.units=depthwise", "transfer.n=12")
    assert base.keys() == frozen.keys() and all(torch.equal(base[k], frozen[k]) for k in base)
    other_seed = init("seed=4")
    assert not torch.equal(base["stages.0.blocks.0.conv_dw.weight"], other_seed["stages.0.blocks.0.conv_dw.weight"])
    from timm.utils import random_seed

    bodies = []
    for classes in (4, 6):
        random_seed(3, 0)
        bodies.append(create_model("convnext_atto", classes, 2).stages[0].blocks[0].conv_dw.weight)
    assert not torch.equal(*bodies)


@pytest.mark.integration
def test_bank_freeze_keeps_the_master_key_filters_through_training(tmp_path):
    """transfer.mode=bank-freeze: every depthwise filter is a*f_k + b of the 8 master key filters, frozen,
    bit-identical after training; without a source the documented assignment (channel c gets f_(c mod 8))."""
    from mkf_utils.config import load_config
    from mkf_utils.filters import master_key_filters, master_key_fit, unit_filters
    from mkf_utils.runs import RunStore
    from mkf_utils.train import setup

    cfg = load_config(overrides=["data.name=synthetic", "data.per_class=8", "data.test_per_class=4",
                                 "data.batch_size=8", "model.name=convnext_atto", "model.stem_stride=2",
                                 "optim.epochs=1", "transfer.units=depthwise", "transfer.n=12",
                                 "transfer.mode=bank-freeze"])
    start = {u: f.clone() for u, f in unit_filters(setup(cfg).model).items()}
    store = RunStore(tmp_path)
    rid = store.run(cfg)["run_id"]
    trained = unit_filters(store.model(rid))
    bank = master_key_filters()
    for u, f in trained.items():
        assert torch.equal(f, start[u])  # frozen: bit-identical after training
        assert torch.allclose(f / f.std(), bank[torch.arange(len(f)) % 8] / bank[torch.arange(len(f)) % 8].std())
    # from a source: each channel is the bank's best fit of the source filter (explained variance 1)
    src = store.load_source(rid)
    noisy = {k: v + 0.01 * torch.randn_like(v) if k.endswith("conv_dw.weight") else v for k, v in src.items()}
    model = create_model("convnext_atto", 6, 2)
    apply_transfer(model, noisy, "depthwise", 4, mode="bank-freeze")
    filters = unit_filters(model)
    first = list(filters)
    assert all(bool((master_key_fit(filters[u]) > 0.9999).all()) for u in first[:4])
    assert not bool((master_key_fit(filters[first[4]]) > 0.9999).all())  # beyond n: untouched
    with pytest.raises(MKFError, match="bank-freeze"):
        load_config(overrides=["transfer.units=conv", "transfer.n=2", "transfer.mode=bank-freeze"])
