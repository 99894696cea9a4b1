"""Training and the run store: resume equals uninterrupted, finished runs are found, locks, bad input."""
from __future__ import annotations

import contextlib

import json
import multiprocessing as mp
import re
import signal
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import pandas as pd
import pytest
import timm
import torch
from omegaconf import OmegaConf

from conftest import TINY, tiny_config
from mkf_utils.config import load_config, run_id
from mkf_utils.errors import MKFError
from mkf_utils.runfolder import RunFolder
from mkf_utils.runs import RunStore

pytestmark = pytest.mark.integration  # runs train, processes spawn


TINY_CLI = [o for o in TINY if not o.startswith("runtime.deterministic")]


class Interrupt(Exception):
    pass


def test_resumed_run_equals_uninterrupted(tmp_path):
    cfg = tiny_config("optim.epochs=3")
    straight = RunStore(tmp_path / "a").run(cfg)

    def kill_mid_epoch_2(epoch, step):
        if (epoch, step) == (1, 3):
            raise Interrupt

    broken = RunStore(tmp_path / "b")
    with pytest.raises(Interrupt):
        broken.run(cfg, step_hook=kill_mid_epoch_2)
    run_dir = broken.path(run_id(cfg))
    assert RunFolder(run_dir).checkpoint_file.exists() and not RunFolder(run_dir).result_file.exists()
    assert len(pd.read_csv(RunFolder(run_dir).metrics_file)) == 1  # epoch 1 done, epoch 2 lost mid-way
    resumed = broken.run(cfg)
    timing = ("epoch_time_s", "train_img_s")
    a = pd.read_csv(RunFolder(tmp_path / "a" / run_id(cfg)).metrics_file).drop(columns=list(timing))
    b = pd.read_csv(RunFolder(run_dir).metrics_file).drop(columns=list(timing))
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert resumed["top1"] == straight["top1"]
    sa = torch.load(RunFolder(tmp_path / "a" / run_id(cfg)).weights_file)
    sb = torch.load(RunFolder(run_dir).weights_file)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not RunFolder(run_dir).checkpoint_file.exists()


def test_finished_run_is_found_not_recomputed(store):
    cfg = tiny_config("optim.epochs=1")
    first = store.run(cfg)
    stamp = store.folder(first["run_id"]).result_file.stat().st_mtime_ns
    assert store.run(cfg) == first
    assert store.folder(first["run_id"]).result_file.stat().st_mtime_ns == stamp
    run = store.folder(first["run_id"])
    assert {run.config_file, run.metrics_file, run.weights_file, run.result_file} <= set(run.path.iterdir())
    df = store.collect()
    row = df[df.run_id == first["run_id"]].iloc[0]
    assert row["model.name"] == "convnext_atto" and row["top1"] == first["top1"]


def test_checkpoint_loads_into_plain_timm_model(store):
    """The saved weights are a stock timm state_dict: a plain timm model with them computes what ours does."""
    from mkf_utils.models import create_model

    res = store.run(tiny_config("optim.epochs=1"))
    sd = torch.load(store.folder(res["run_id"]).weights_file, weights_only=True)
    plain = timm.create_model("convnext_atto", num_classes=res["num_classes"])
    plain.load_state_dict(sd)
    ours = create_model("convnext_atto", res["num_classes"], stem_stride=2)
    ours.load_state_dict(sd)
    ours.stem[0].stride, ours.stem[0].padding = plain.stem[0].stride, plain.stem[0].padding  # stock stem again
    x = torch.randn(2, 3, 64, 64)
    assert torch.equal(plain.eval()(x), ours.eval()(x))


def test_transfer_run_freezes_source_filters(store):
    src = store.run(tiny_config("data.split=random-a:0", "optim.epochs=1"))
    res = store.run(tiny_config("data.split=random-b:0", "optim.epochs=1", f"transfer.source={src['run_id']}",
                                "transfer.n=6"))
    assert res["frozen_units"][-1] == "stages.2.blocks.1.conv_dw" and 0 < res["frozen_fraction"] < 0.05
    a = torch.load(store.folder(src["run_id"]).weights_file)
    b = torch.load(store.folder(res["run_id"]).weights_file)
    assert all(torch.equal(a[f"{u}.weight"], b[f"{u}.weight"]) for u in res["frozen_units"])
    assert not torch.equal(a["stages.3.blocks.0.conv_dw.weight"], b["stages.3.blocks.0.conv_dw.weight"])


def test_run_id_covers_what_not_how():
    base = tiny_config()
    assert run_id(base) == run_id(tiny_config("runtime.workers=2", "runtime.progress=false", "data.root=/elsewhere"))
    assert run_id(base) != run_id(tiny_config("seed=1"))
    assert run_id(tiny_config("transfer.source=abc", "transfer.n=1")) != run_id(tiny_config("transfer.source=abd",
                                                                                            "transfer.n=1"))


def test_corrupt_checkpoint_is_reported_and_kept(tmp_path):
    store, cfg = RunStore(tmp_path), tiny_config()
    ckpt = store.folder(run_id(cfg)).checkpoint_file
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(MKFError, match="is corrupt.*rm .*checkpoint.pt"):
        store.run(cfg)
    assert ckpt.read_bytes() == b"not a checkpoint"


def test_missing_source_and_bad_config():
    with pytest.raises(MKFError, match="neither a run .* nor a file"):
        RunStore("/tmp/mkf-empty-store").run(tiny_config("transfer.source=0123456789ab", "transfer.n=1"))
    with pytest.raises(MKFError, match="malformed config.*optim.epoch"):
        load_config(overrides=["optim.epoch=3"])
    with pytest.raises(MKFError, match="malformed config.*transfer.mode='freeze'"):
        load_config(overrides=["transfer.mode=freeze"])
    with pytest.raises(MKFError, match="malformed config.*seed"):
        load_config(overrides=["seed=abc"])


def _run_in_process(root, queue):
    queue.put(RunStore(root).run(tiny_config("optim.epochs=1", "seed=5")))


def test_two_processes_share_one_run(tmp_path):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_run_in_process, args=(tmp_path, queue)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=300) for _ in procs]
    for p in procs:
        p.join()
    assert results[0] == results[1]  # the second waited and read the first's result (timings included)


def test_cli_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  name: resnet19\n")
    out = subprocess.run([sys.executable, "-m", "mkf_utils.cli", "train", str(bad), "--store", str(tmp_path)],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().startswith("mkf: error: unknown model 'resnet19'") and "Fix:" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_cli_units_and_splits(capsys):
    from mkf_utils.cli import main

    assert main(["units", "convnext_atto", "--kind", "depthwise"]) == 0
    units = capsys.readouterr().out.split()
    assert len(units) == 12 and units[0] == "stages.0.blocks.0.conv_dw"
    assert main(["splits", "show", "imagenet-manmade"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 551 and lines[0] == "0\tn02666196\tabacus"
    assert main(["units", "convnext_atto", "--kind", "spatial"]) == 2
    assert "unknown unit kind" in capsys.readouterr().err


def test_collect_skips_runs_it_cannot_read(tmp_path):
    stale = tmp_path / "0123456789ab"
    stale.mkdir()
    RunFolder(stale).config_file.write_text("runtime:\n  channels_last: auto\n")
    RunFolder(stale).result_file.write_text("{}")
    with pytest.warns(UserWarning, match="skipping run"):
        assert RunStore(tmp_path).collect().empty


@pytest.mark.integration
def test_torchrun_two_ranks_equal_one_process(tmp_path):
    """One config (one run id) trained by two CPU ranks and by one process: data.batch_size is the global batch, so
    each rank takes half of it; with no augmentation each step sees the same images (rank r takes every other
    image of the shuffled order), DDP averages the gradients, and ConvNeXt has no batch norm; only the order of
    float sums differs. Every test image is counted once."""
    common = [*TINY_CLI, "optim.epochs=1", "data.augment=false", "data.test_per_class=13"]
    cwd = Path(__file__).parents[1]

    def train(launcher, name):
        return subprocess.run([sys.executable, *launcher, "-m", "mkf_utils.cli", "train", "configs/quick.yaml",
                               "--store", str(tmp_path / name), "--set", *common],
                              capture_output=True, text=True, cwd=cwd)

    def result(out):
        assert out.returncode == 0, out.stderr[-2000:]
        return json.loads(out.stdout[out.stdout.index("{"):])

    torchrun = ["-m", "torch.distributed.run", "--nproc_per_node", "2"]
    two, one = result(train(torchrun, "two")), result(train([], "one"))
    assert two["run_id"] == one["run_id"] and two["world_size"] == 2
    assert two["test_images"] == one["test_images"] == 130  # 13 per class, odd: no padding
    assert abs(two["top1"] - one["top1"]) <= 1 / 130  # at most one test image flips
    assert abs(two["train_top1"] - one["train_top1"]) <= 0.01
    assert RunFolder(tmp_path / "two" / two["run_id"]).weights_file.exists()


def test_a_global_batch_that_does_not_split_over_the_ranks_is_refused(monkeypatch, tmp_path):
    """Before any process group starts or anything is written: a one-line error naming the fix."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(MKFError, match="data.batch_size=33 \\(the global batch\\) does not split evenly over 2 "
                                       "ranks.*multiple of 2"):
        RunStore(tmp_path).run(tiny_config("data.batch_size=33"))
    assert not any(tmp_path.iterdir())


def test_imagefolder_run_end_to_end(tmp_path):
    from torchvision.io import write_png

    g = torch.Generator().manual_seed(0)
    for split, n in (("train", 8), ("val", 4)):
        for wnid in ("n01440764", "n02666196"):
            (tmp_path / "data" / split / wnid).mkdir(parents=True)
            for i in range(n):
                img = torch.randint(0, 255, (3, 20, 24), dtype=torch.uint8, generator=g)
                write_png(img, str(tmp_path / "data" / split / wnid / f"{i}.png"))
    cfg = tiny_config("data.name=imagefolder", f"data.root={tmp_path / 'data'}", "data.image_size=16",
                      "data.batch_size=4", "data.per_class=null", "optim.epochs=1", "runtime.workers=0")
    res = RunStore(tmp_path / "runs").run(cfg)
    assert (res["train_images"], res["test_images"], res["num_classes"]) == (16, 8, 2)


@pytest.mark.parametrize("overrides,message", [
    (["transfer.n=99", "transfer.units=depthwise"], "transfer.source is not set"),
    (["optim.lr=-1"], r"optim.lr=-1.0: it must be above 0"),
    (["optim.label_smoothing=1.5"], "label_smoothing"),
    (["data.per_class=0"], "data.per_class=0"),
    (["transfer.n=2", "transfer.mode=random-freeze", "transfer.norm=freeze"], "dead"),
    (["transfer.n=2", "transfer.mode=random-freeze", "transfer.units=block"], "dead"),
    (["optim.opt=nosuchopt"], "optim.opt='nosuchopt' is not a timm optimizer"),
    (["optim.sched=linear"], "optim.sched='linear'"),
    (["transfer.n=2", "transfer.mode=bank-freeze", "transfer.bank=centres"], "transfer.bank=centres reads a source"),
])
def test_bad_configs_are_one_line_errors_and_leave_no_folder(tmp_path, capsys, overrides, message):
    from mkf_utils.cli import main

    repo = Path(__file__).parents[1]
    assert main(["train", str(repo / "configs/quick.yaml"), "--store", str(tmp_path), "--set", *TINY_CLI,
                 *overrides]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Fix:" in err
    assert re.search(message, err), err
    assert not any(tmp_path.iterdir())


def test_a_bad_config_ends_the_process_with_one_line_and_status_2(tmp_path):
    out = subprocess.run([sys.executable, "-m", "mkf_utils.cli", "train", "configs/quick.yaml", "--store",
                          str(tmp_path), "--set", *TINY_CLI, "optim.opt=nosuchopt"], capture_output=True, text=True,
                         cwd=Path(__file__).parents[1])
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-1500:]
    assert out.stderr.strip().splitlines() == [out.stderr.strip()] and "Fix:" in out.stderr


def test_corrupt_result_is_a_clear_error_and_skipped_by_collect(tmp_path):
    store = RunStore(tmp_path)
    cfg = tiny_config("optim.epochs=1")
    store.run(cfg)
    f = store.folder(run_id(cfg)).result_file
    f.write_text(f.read_text()[:20])  # truncated
    with pytest.raises(MKFError, match="is corrupt.*delete"):
        store.run(cfg)
    with pytest.warns(UserWarning, match="skipping run"):
        assert store.collect().empty


def test_file_sources_are_identified_by_content(tmp_path):
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    torch.save({"w": torch.zeros(2)}, a)
    b.write_bytes(a.read_bytes())
    ids = lambda p: run_id(tiny_config(f"transfer.source={p}", "transfer.n=1"))
    assert ids(a) == ids(b)  # same bytes, other path
    before = ids(a)
    torch.save({"w": torch.ones(2)}, a)
    assert ids(a) != before  # same path, other bytes


@pytest.mark.integration
def test_sigkill_mid_epoch_then_restart_equals_uninterrupted(tmp_path):
    """A `mkf train` process killed with SIGKILL (no clean-up at all) and started again gives the same run, bit
    for bit, as one never interrupted (deterministic mode)."""
    args = [sys.executable, "-m", "mkf_utils.cli", "train", "configs/quick.yaml", "--set", *TINY,
            "optim.epochs=2", "--store"]
    cwd = Path(__file__).parents[1]
    subprocess.run(args + [str(tmp_path / "straight")], cwd=cwd, check=True, capture_output=True)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(args + [str(killed)], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    metrics = lambda: next(killed.glob("*/metrics.csv"), None)
    while (metrics() is None or len(metrics().read_text().splitlines()) < 2) and time.monotonic() < deadline:
        time.sleep(0.05)  # until epoch 1 is checkpointed
    time.sleep(0.5)  # into epoch 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run_dir = metrics().parent
    assert RunFolder(run_dir).checkpoint_file.exists() and not RunFolder(run_dir).result_file.exists()
    subprocess.run(args + [str(killed)], cwd=cwd, check=True, capture_output=True)
    timing = ["epoch_time_s", "train_img_s"]
    a = pd.read_csv(RunFolder(tmp_path / "straight" / run_dir.name).metrics_file).drop(columns=timing)
    b = pd.read_csv(RunFolder(run_dir).metrics_file).drop(columns=timing)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    sa, sb = (torch.load(RunFolder(d / run_dir.name).weights_file) for d in (tmp_path / "straight", killed))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_run_ids_are_stable():
    """The committed records are found by id: the id of a recorded config must never change (here the
    evidence study's ResNet-18 base on the man-made half, recorded in runs/98e3e8d51bf7), and a field added
    later changes it only when set away from its default."""
    from mkf_utils.profiles import load_profile, section_plan

    plan = section_plan(load_profile("evidence"), "study")
    base = next(p.config for p in plan if p.labels["architecture"] == "ResNet-18" and p.labels["treatment"] == "base"
                and p.labels["target"] == "man-made" and p.labels["epochs"] == 20)
    assert run_id(base) == "98e3e8d51bf7"
    assert run_id(load_config(overrides={**OmegaConf.to_container(base), "optim": {"sched": "poly"}})) != "98e3e8d51bf7"


def test_flip_evaluation_averages_an_image_and_its_mirror():
    from mkf_utils.train import evaluate

    torch.manual_seed(0)
    model = timm.create_model("resnet18", num_classes=3).eval()
    x, y = torch.randn(6, 3, 32, 32), torch.tensor([0, 1, 2, 0, 1, 2])
    flipped = evaluate(model, [(x, y)], nullcontext, 3, flip=True)
    assert flipped == evaluate(model, [(x.flip(3), y)], nullcontext, 3, flip=True)  # mirror-symmetric by design
    assert flipped["test_loss"] != evaluate(model, [(x, y)], nullcontext, 3)["test_loss"]


def test_result_records_its_provenance(store):
    res = store.run(tiny_config("optim.epochs=1"))
    p = json.loads(store.folder(res["run_id"]).result_file.read_text())["provenance"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parents[1])
    if head.returncode == 0:
        assert p["code_revision"] == head.stdout.strip() and isinstance(p["code_dirty"], bool)
    assert p["threads"] == torch.get_num_threads() and p["torch"] == torch.__version__
    assert p["timm"] == timm.__version__ and p["device"] == "cpu" and p["cpu"]


def _plan_in_process(root, splits, queue):
    from mkf_utils.experiments import run_plan
    from mkf_utils.plans import ab_plan

    archs = {"ConvNeXt-atto": {"model": {"name": "convnext_atto", "stem_stride": 2}, "units": "depthwise"}}
    common = {"data": {"name": "synthetic", "per_class": 32, "batch_size": 32}, "optim": {"epochs": 1}}
    plan = ab_plan(archs, {"A": splits[0], "B": splits[1]}, {}, [0], common)
    queue.put(run_plan(plan, RunStore(root), log=None).to_dict("records"))


@pytest.mark.integration
def test_two_overlapping_plans_train_each_run_once(tmp_path):
    """Two processes run plans that share a base: it is trained once (the other reads its result, timings
    and all), and every run has exactly one folder."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    plans = [("random-a:0", "random-b:0"), ("random-b:0", "random-a:1")]
    procs = [ctx.Process(target=_plan_in_process, args=(tmp_path, s, queue)) for s in plans]
    for p in procs:
        p.start()
    tables = [queue.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    rows = {}
    for table in tables:
        for r in table:
            rows.setdefault(r["run_id"], []).append(r)
    shared = [rs for rs in rows.values() if len(rs) == 2]
    same = [{k: r[k] for k in ("top1", "train_time_s", "code_revision")} for r in shared[0]] if shared else []
    assert len(shared) == 1 and same[0] == same[1]  # the same result and training time: trained once
    assert len(rows) == 3 and len([p for p in tmp_path.iterdir() if p.is_dir()]) == 3


def test_a_runs_initial_model_is_the_net_it_started_from(tmp_path):
    """RunStore.model(rid, initial=True) rebuilds the random net training began with (seed set as training
    sets it); without ``initial`` the trained net."""
    from mkf_utils.config import load_config
    from mkf_utils.train import evaluate, setup

    cfg = load_config(overrides=["data.name=synthetic", "data.per_class=8", "data.test_per_class=4",
                                 "data.batch_size=8", "model.name=convnext_atto", "model.stem_stride=2",
                                 "optim.epochs=1", "seed=3", "data.split=random-b:0"])
    started = setup(cfg).model.state_dict()
    store = RunStore(tmp_path)
    rid = store.run(cfg)["run_id"]
    init, trained = store.model(rid, initial=True).state_dict(), store.model(rid).state_dict()
    assert all(torch.equal(started[k], v) for k, v in init.items())
    assert not all(torch.equal(init[k], trained[k]) for k in init)
    # the trained net is the one the record measured: evaluated again, it scores the recorded top-1
    s = setup(cfg)
    s.model.load_state_dict(trained)
    again = evaluate(s.model, s.test_loader, contextlib.nullcontext, s.num_classes)
    assert again["top1"] == store.result(rid)["top1"]
