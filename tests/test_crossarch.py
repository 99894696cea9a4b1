"""Cross-architecture mapping of depthwise filters (mkf_utils.crossarch) on constructed state dicts."""
from __future__ import annotations

import pytest
import torch

from mkf_utils.crossarch import channel_map, map_depthwise, unit_map
from mkf_utils.errors import MKFError
from mkf_utils.models import create_model
from mkf_utils.transfer import apply_transfer
from mkf_utils.units import transfer_units

pytestmark = pytest.mark.unit


def _labelled(model):
    """A state dict whose depthwise filter (unit u, channel c) is filled with 1000 u + c: its origin, readable."""
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    for u, name in enumerate(transfer_units(model, "depthwise")):
        w = sd[f"{name}.weight"]
        sd[f"{name}.weight"] = (1000 * u + torch.arange(len(w), dtype=w.dtype)).view(-1, 1, 1, 1).expand_as(w).clone()
        sd[f"{name}.bias"] = (1000 * u + torch.arange(len(w), dtype=w.dtype))
    return sd


def test_units_map_by_relative_depth_ends_to_ends():
    assert unit_map(12, 12) == list(range(12))
    assert unit_map(4, 2) == [0, 3] and unit_map(2, 4) == [0, 0, 1, 1] and unit_map(5, 1) == [4]
    m = unit_map(12, 14)
    assert m[0] == 0 and m[-1] == 11 and m == sorted(m)
    with pytest.raises(MKFError, match="cannot map 0 source units"):
        unit_map(0, 3)


def test_channels_cycle_or_sample_every_source_channel_first():
    assert channel_map(4, 6).tolist() == [0, 1, 2, 3, 0, 1]
    drawn = channel_map(40, 48, "sample", seed=1)
    assert sorted(drawn[:40].tolist()) == list(range(40)) and drawn.max() < 40
    assert not torch.equal(drawn, channel_map(40, 48, "sample", seed=2))
    with pytest.raises(MKFError, match="unknown channel mapping 'random'"):
        channel_map(4, 6, "random")


def test_atto_filters_onto_nano_carry_their_origin_and_freeze():
    atto, nano = create_model("convnext_atto", 4, stem_stride=2), create_model("convnext_nano", 6, stem_stride=2)
    mapped = map_depthwise(_labelled(atto), atto, nano)
    units = transfer_units(nano, "depthwise")
    assert len(units) == 14 and set(mapped) == {f"{u}.{p}" for u in units for p in ("weight", "bias")}
    for i, (u, j) in enumerate(zip(units, unit_map(12, 14))):
        w = mapped[f"{u}.weight"]
        expected = 1000 * j + torch.arange(len(w)) % (40 * 2 ** min(3, [0, 0, 1, 1, 2, 2, 2, 2, 2, 2, 3, 3][j]))
        assert torch.equal(w[:, 0, 0, 0], expected.float()), u  # unit j's channels, cycled
        assert torch.equal(mapped[f"{u}.bias"], expected.float())
    report = apply_transfer(nano, mapped, "depthwise", 14)  # usable as a transfer source as it is
    assert len(report.frozen) == 28 and torch.equal(nano.state_dict()[f"{units[-1]}.weight"], mapped[f"{units[-1]}.weight"])


def test_kernels_of_another_size_are_refused():
    atto = create_model("convnext_atto", 4, stem_stride=2)
    other = create_model("convnext_atto", 4, stem_stride=2, kernel_sizes=5)
    with pytest.raises(MKFError, match="depthwise kernels differ"):
        map_depthwise(atto.state_dict(), atto, other)


@pytest.mark.integration  # trains two tiny runs
def test_a_run_copying_from_another_architecture_freezes_the_mapped_filters(store):
    """Through the run store: a convnext_atto run whose source is a convnext_nano run (14 depthwise units, wider)
    trains with exactly the mapped filters frozen, bit for bit; for other unit kinds the mismatch is an error."""
    from tests.conftest import tiny_config

    src = store.run(tiny_config("data.split=random-a:0", "optim.epochs=1", "model.name=convnext_nano"))
    cfg = tiny_config("data.split=random-b:0", "optim.epochs=1", f"transfer.source={src['run_id']}", "transfer.n=12",
                      "transfer.channels=sample")
    res = store.run(cfg)
    nano, atto = create_model("convnext_nano", 10, 2), create_model("convnext_atto", 10, 2)
    expected = map_depthwise(torch.load(store.folder(src["run_id"]).weights_file), nano, atto, "sample", cfg.seed)
    got = torch.load(store.folder(res["run_id"]).weights_file)
    assert len(res["frozen_units"]) == 12
    assert all(torch.equal(got[k], v) for k, v in expected.items())
    with pytest.raises(MKFError, match="only depthwise units map between architectures"):
        store.run(tiny_config("data.split=random-b:0", "optim.epochs=1", f"transfer.source={src['run_id']}",
                              "transfer.n=2", "transfer.units=pointwise"))
