"""Records without weights: a missing source is retrained and checked; `mkf verify` finds drift."""
from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
import torch

from conftest import records_copy, tiny_config
from mkf_utils.cli import main
from mkf_utils.config import run_id
from mkf_utils.errors import MKFError
from mkf_utils.runfolder import RunFolder
from mkf_utils.runs import RunStore
from mkf_utils.verify import verify

pytestmark = pytest.mark.integration  # runs train, processes spawn


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A store with a finished base and a transfer from it (the weights present)."""
    store = RunStore(tmp_path_factory.mktemp("recorded"))
    base = tiny_config("optim.epochs=1", "data.split=random-a:0")
    store.run(base)
    transfer = tiny_config("optim.epochs=1", "data.split=random-b:0", "transfer.n=12", f"transfer.source={run_id(base)}")
    store.run(transfer)
    return store, base, transfer


def records_only(store: RunStore, tmp_path) -> RunStore:
    """A copy of ``store`` as a fresh clone has it: every record, no weights."""
    return RunStore(records_copy(store.root, tmp_path / "clone"))


def test_missing_source_is_retrained_to_its_record(recorded, tmp_path):
    store, base, transfer = recorded
    clone = records_only(store, tmp_path)
    shutil.rmtree(clone.path(run_id(transfer)))  # the transfer is missing; its source has a record only
    with pytest.warns(UserWarning, match="no weights"):
        again = clone.run(transfer)
    assert again["top1"] == store.result(run_id(transfer))["top1"]
    a = torch.load(store.folder(run_id(base)).weights_file)
    b = torch.load(clone.folder(run_id(base)).weights_file)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not (clone.path(run_id(base)) / ".reproduce").exists()
    log = pd.read_csv(clone.folder(run_id(base)).reproductions_file)  # the check is recorded beside the run
    assert len(log) == 1 and bool(log.ok[0]) and bool(log.identical[0])
    assert log.threads[0] == store.result(run_id(base))["provenance"]["threads"]  # the retraining's, not this process's
    assert log.retrained_top1[0] == log.recorded_top1[0] == store.result(run_id(base))["top1"]


def test_source_that_disagrees_with_its_record_is_refused(recorded, tmp_path):
    store, base, transfer = recorded
    clone = records_only(store, tmp_path)
    shutil.rmtree(clone.path(run_id(transfer)))
    rec_path = clone.folder(run_id(base)).result_file
    rec = json.loads(rec_path.read_text())
    rec["top1"] += 0.5  # a record the code no longer reproduces
    rec_path.write_text(json.dumps(rec))
    with pytest.raises(MKFError, match="record says"), pytest.warns(UserWarning):
        clone.run(transfer)
    assert not clone.folder(run_id(base)).weights_file.exists()  # never a wrong source
    assert not pd.read_csv(clone.folder(run_id(base)).reproductions_file).ok[0]  # and the refusal is recorded
    assert clone.result(run_id(transfer)) is None


def test_verify_passes_on_a_faithful_store_and_flags_a_drifted_record(recorded, tmp_path):
    store, base, transfer = recorded
    report = verify(store, k=2, seed=0, log=None)
    assert len(report) == 2 and report.ok.all() and report.identical.all()
    clone = records_only(store, tmp_path)
    metrics = clone.folder(run_id(base)).metrics_file
    lines = metrics.read_text().splitlines()
    lines[1] = lines[1].replace("0.", "0.9", 1)
    metrics.write_text("\n".join(lines) + "\n")
    drift = verify(clone, runs=[run_id(base)], log=None)
    assert not drift.ok.iloc[0] and not drift.identical.iloc[0]
    assert main(["verify", "--store", str(clone.root), "--id", run_id(base)]) == 1
    assert main(["verify", "--store", str(tmp_path / "empty")]) == 2


def test_verify_draws_only_records_of_this_device_type(recorded, tmp_path, monkeypatch):
    """A record computed on a GPU is not drawn on a CPU machine (it would take hours there, in another precision)."""
    from mkf_utils import verify as verify_module

    store, base, transfer = recorded
    clone = records_only(store, tmp_path)
    result = clone.folder(run_id(transfer)).result_file
    r = json.loads(result.read_text())
    result.write_text(json.dumps({**r, "device": "cuda:0"}))
    monkeypatch.setattr(verify_module, "here_device", lambda: "cpu")
    assert verify_module.drawable(clone) == [run_id(base)]
    monkeypatch.setattr(verify_module, "here_device", lambda: "cuda")
    assert verify_module.drawable(clone) == [run_id(transfer)]
    result.write_text(json.dumps(r))  # both on the CPU now: none on a GPU
    with pytest.raises(MKFError, match="no recorded runs computed on a cuda"):
        verify(clone, 1)


def test_provenance_takes_the_senders_revision(monkeypatch):
    """On a lent machine the copy's .git may be another commit's: MKF_CODE_REVISION / MKF_CODE_DIRTY win."""
    from mkf_utils.provenance import code_state

    code_state.cache_clear()
    monkeypatch.setenv("MKF_CODE_REVISION", "abc123")
    monkeypatch.setenv("MKF_CODE_DIRTY", "0")
    try:
        assert code_state() == ("abc123", False)
    finally:
        code_state.cache_clear()


def test_a_gpu_record_is_held_to_the_tolerance_not_to_the_bit(recorded, tmp_path):
    """cuDNN's fast kernels sum in no fixed order: a GPU run retrained on the same kind of GPU need not be
    bit-identical (unless it set runtime.deterministic), but its top-1 must stay within TOLERANCE."""
    from mkf_utils.verify import compare

    store, base, _ = recorded
    rec, again = tmp_path / "rec", tmp_path / "again"
    for d in (rec, again):
        shutil.copytree(store.path(run_id(base)), d, ignore=shutil.ignore_patterns("*.pt", ".lock"))
    metrics = RunFolder(again).metrics_file
    lines = metrics.read_text().splitlines()
    lines[1] = lines[1].replace("0.", "0.9", 1)  # another trajectory, the same final top-1
    metrics.write_text("\n".join(lines) + "\n")
    assert not compare(rec, again)["ok"]  # a CPU record: bit for bit
    for d in (rec, again):
        r = json.loads(RunFolder(d).result_file.read_text())
        RunFolder(d).result_file.write_text(json.dumps({**r, "device": "cuda"}))
    assert "deterministic: true" in RunFolder(rec).config_file.read_text()  # the tests' runs ask for it
    assert not compare(rec, again)["ok"]  # deterministic on a GPU: bit for bit
    cfg = RunFolder(rec).config_file
    cfg.write_text(cfg.read_text().replace("deterministic: true", "deterministic: false"))
    check = compare(rec, again)
    assert check["same_machine_kind"] and not check["identical"] and check["ok"]
