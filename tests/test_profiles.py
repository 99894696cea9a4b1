"""Profiles: every shipped profile checks; mistakes are one-line errors; one definition per architecture."""
from __future__ import annotations

import re
from collections import Counter

import pytest
from omegaconf import OmegaConf

from conftest import fake_record
from mkf_utils.errors import MKFError
from mkf_utils.config import load_config, run_id
from mkf_utils.figures import optional_section_runs, progress, recorded, subtitle
from mkf_utils.plans import distinct
from mkf_utils.profiles import PROFILES, SECTIONS, load_profile, only, section_plan, training_order
from mkf_utils.runs import RunStore

pytestmark = pytest.mark.unit


@pytest.mark.integration  # builds every run of every profile once (tens of seconds), kept for the tests after
@pytest.mark.parametrize("name", sorted(p.stem for p in PROFILES.glob("*.yaml")))
def test_shipped_profiles_check(name):
    """Every section of a shipped profile plans runs, each config validated: the list of planned runs that
    `mkf runs --orphans` and runs/INDEX.csv read (`mkf profile NAME` builds the same for one)."""
    from mkf_utils.runindex import planned_ids

    labels = [label.split(":") for labels in planned_ids().values() for label in labels]
    counts = Counter(sec for profile, sec in labels if profile == name)
    P = load_profile(name)
    assert set(counts) == {sec for sec in SECTIONS if P[sec] is not None} and all(counts.values())


@pytest.mark.parametrize("overrides,message", [
    ({"figure3": {"treatment": {}}}, "Key 'treatment' not in 'Section'"),
    ({"seed": [0]}, "Key 'seed' not in 'Profile'"),
    ({"batch_size": "large"}, "batch_size"),
    ({"figure5": {"architectures": ["ResNet-19"]}}, r"names \['ResNet-19'\], which are not defined"),
    ({"figure3": {"treatments": {"AnC": [1.0]}}}, "treatments has"),
    ({"figure5": {"target": "plants"}}, "is not a half"),
    ({"crossdataset": {"targets_by_architecture": {"ConvNeXt-atto": ["man-made"]}}},
     r"crossdataset.targets_by_architecture.ConvNeXt-atto: \['man-made'\]"),  # a source, not a target
    ({"crossdataset": {"targets_by_architecture": {"ResNet-18": ["natural"]}}}, "targets_by_architecture.ResNet-18"),
])
def test_mistakes_are_one_line_errors(overrides, message):
    with pytest.raises(MKFError, match=message):
        load_profile("smoke", overrides)


@pytest.mark.integration
def test_cli_check_and_unknown_profile(tmp_path, capsys):
    from mkf_utils.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text((PROFILES / "smoke.yaml").read_text().replace("batch_size:", "batchsize:"))
    assert main(["profile", str(bad)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "batchsize" in err
    assert main(["profile", "evidense"]) == 2
    err = capsys.readouterr().err
    assert "use one of:" in err and "evidence" in err
    assert main(["profile", "smoke"]) == 0 and capsys.readouterr().out.startswith("profile smoke: figure3 ")


def test_an_architecture_is_defined_once_and_sections_share_its_runs():
    P = load_profile("quick")
    f3 = {p.labels["architecture"]: p for p in section_plan(P, "figure3") if p.labels["treatment"] == "base"}
    f5 = {p.labels["architecture"]: p for p in section_plan(P, "figure5") if p.labels["treatment"] == "base"}
    assert f3["ResNet-18"].config == f5["ResNet-18"].config  # one definition, so Figure 5 reuses Figure 3's bases
    changed = load_profile("quick", {"architectures": {"ResNet-18": {"optim": {"lr": 0.1}}}})
    assert {p.config.optim.lr for p in section_plan(changed, "figure5") if p.labels["architecture"] == "ResNet-18"} == {0.1}


def test_two_nets_that_share_a_base_each_get_its_row_and_it_trains_once(tmp_path):
    P = load_profile("smoke")  # pointwise: ConvNeXt-atto's pointwise and separable units, the same bases
    plan = section_plan(P, "pointwise")
    bases = [p for p in plan if p.labels["treatment"] == "base"]
    assert Counter(p.labels["architecture"] for p in bases) == {"ConvNeXt-atto pointwise": 2, "ConvNeXt-atto separable": 2}
    assert len({run_id(p.config) for p in bases}) == 2
    assert len(training_order(P, ["pointwise"])) == len({run_id(p.config) for p in plan})
    store = RunStore(tmp_path)
    for p in distinct(bases):
        fake_record(store, p.config, top1=0.5)
    shown = recorded(plan, store)
    assert len(shown) == 4 and {p.labels["architecture"] for p in shown} == {"ConvNeXt-atto pointwise",
                                                                            "ConvNeXt-atto separable"}


def test_a_table_net_can_train_into_some_targets_only():
    both = {"architectures": ["ConvNeXt-atto", "ResNet-18"]}
    P = load_profile("smoke", {"crossdataset": both})
    some = load_profile("smoke", {"crossdataset": {**both, "targets_by_architecture": {"ResNet-18": ["natural"]}}})
    targets = lambda P, net: {p.labels["target"] for p in section_plan(P, "crossdataset")  # noqa: E731
                              if p.labels["architecture"] == net and p.labels["treatment"] != "source"}
    assert targets(P, "ResNet-18") == targets(some, "ConvNeXt-atto") == {"natural", "fashion"}
    assert targets(some, "ResNet-18") == {"natural"}
    ids = [run_id(p.config) for p in section_plan(some, "crossdataset")]
    assert len(ids) == len(set(ids))
    assert set(ids) < {run_id(p.config) for p in section_plan(P, "crossdataset")}
    assert subtitle(P, "crossdataset")[-1].endswith("; into natural, fashion.")
    assert subtitle(some, "crossdataset")[-1].endswith("; ConvNeXt-atto into natural, fashion; ResNet-18 into natural.")


def test_a_table_net_can_have_more_seeds():
    """A table's ``more_seeds``: one net's bases, the sources its copies need and the named treatments, into its
    targets only, at seeds beyond the table's; nothing of the other net; the runs at the table's seeds unchanged."""
    both = {"architectures": ["ConvNeXt-atto", "ResNet-18"], "targets_by_architecture": {"ResNet-18": ["natural"]}}
    P = load_profile("smoke", {"crossdataset": both})
    more = load_profile("smoke", {"crossdataset": {**both, "more_seeds": {"ResNet-18": [
        {"seeds": [4], "treatments": ["AnB"]}, {"seeds": [5], "treatments": ["random-frozen"]}]}}})
    cells = lambda P, seed: {(p.labels["architecture"], p.labels["treatment"], p.labels["direction"])  # noqa: E731
                             for p in section_plan(P, "crossdataset") if p.labels["seed"] == seed}
    assert cells(more, 0) == cells(P, 0) and cells(P, 4) == cells(P, 5) == set()
    assert cells(more, 4) == {("ResNet-18", "base", "natural"), ("ResNet-18", "source", "man-made"),
                              ("ResNet-18", "source", "fashion"), ("ResNet-18", "source", "synthetic"),
                              ("ResNet-18", "AnB", "man-made→natural"), ("ResNet-18", "AnB", "fashion→natural"),
                              ("ResNet-18", "AnB", "synthetic→natural")}
    assert cells(more, 5) == {("ResNet-18", "base", "natural"), ("ResNet-18", "random-frozen", "natural")}
    assert "ResNet-18: bases and random-frozen (all units) also at seeds 5." in subtitle(more, "crossdataset")[1]
    with pytest.raises(MKFError, match="crossdataset.more_seeds.ResNet-18"):
        load_profile("smoke", {"crossdataset": {**both, "more_seeds": {"ResNet-18": {"seeds": [4],
                                                                                      "treatments": ["BnB"]}}}})


def test_subtitles_come_from_the_settings():
    P = load_profile("quick", {"optim": {"epochs": 7}, "seeds": [3, 4, 5], "data": {"per_class": 123},
                               "architectures": {"ResNet-18": {"model": {"stem_stride": 2}}}})
    text = " ".join(subtitle(P, "figure3"))
    assert "7 epochs" in text and "3 seeds (3, 4, 5)" in text and "123 train" in text
    assert "ResNet-18 (resnet18, stem stride 2, conv units)" in text and "In progress" not in text
    assert subtitle(P, "figure3")[0] == "Profile: quick profile (a demo: too little training for filters to matter)."
    assert subtitle(P, "figure3", 27, 72)[-1] == progress(27, 72) != ""
    assert subtitle(P, "figure3", 72, 72) == subtitle(P, "figure3")


def test_a_study_budget_can_have_its_own_seeds():
    budgets = [{"per_class": 8, "epochs": 1}, {"per_class": 8, "epochs": 2, "recipe": "cheap", "seeds": [0, 1, 2]}]
    P = load_profile("smoke", {"seeds": [0], "study": {"budgets": budgets}})
    plan = section_plan(P, "study")
    seeds = {(p.labels["recipe"], p.labels["seed"]) for p in plan}
    assert {s for r, s in seeds if r == "default"} == {0} and {s for r, s in seeds if r == "cheap"} == {0, 1, 2}
    assert "1 seed (0); cheap 8 x 2: seeds 0, 1, 2." in subtitle(P, "study")[1]


@pytest.mark.integration
def test_plan_trains_what_decides_the_comparisons_first(tmp_path, capsys):
    """`mkf plan` lists a section's missing runs (bases and all-units runs seed by seed, then partial depths),
    trains them, and afterwards finds them all recorded."""
    from mkf_utils.cli import main

    P = OmegaConf.load(PROFILES / "smoke.yaml")
    P.data = {"name": "synthetic", "root": None, "per_class": 16, "test_per_class": 8}
    P.halves = {"man-made": "random-a:0", "natural": "random-b:0"}
    P.seeds = [0, 1]
    P.figure3 = {"architectures": ["ConvNeXt-atto"], "treatments": {"AnB": [0.5, 1.0]}, "target": "natural"}
    path = tmp_path / "tiny.yaml"
    OmegaConf.save(P, path)
    args = [str(path), "figure3", "--store", str(tmp_path / "runs")]
    assert main(["plan", *args, "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("tiny.yaml figure3: 0 of 8 runs recorded")
    assert lines[1] == "  left: no estimate (no run like them recorded)"
    order = [(line.split()[3], line.split()[-2], line.split()[-1]) for line in lines[2:]]
    assert order == [("base", "n=0", "seed=0"), ("base", "n=0", "seed=0"), ("AnB", "n=12", "seed=0"),
                     ("base", "n=0", "seed=1"), ("base", "n=0", "seed=1"), ("AnB", "n=12", "seed=1"),
                     ("AnB", "n=6", "seed=0"), ("AnB", "n=6", "seed=1")]
    assert main(["plan", *args, "--workers", "1"]) == 0
    capsys.readouterr()
    assert main(["plan", *args, "--list"]) == 0
    assert capsys.readouterr().out.splitlines() == [f"tiny.yaml figure3: 8 of 8 runs recorded in {tmp_path / 'runs'}"]
    # a figure in progress shows recorded runs beside their base: without seed 1's base on the natural half,
    # seed 1's transfers into it are left out too
    store = RunStore(tmp_path / "runs")
    plan = section_plan(load_profile(path), "figure3")
    gone = next(p for p in plan if p.labels["treatment"] == "base" and p.labels["target"] == "natural"
                and p.labels["seed"] == 1)
    store.folder(run_id(gone.config)).result_file.unlink()
    shown = {(p.labels["treatment"], p.labels["target"], p.labels["seed"]) for p in recorded(plan, store)}
    assert shown == {("base", "man-made", 0), ("base", "natural", 0), ("AnB", "natural", 0), ("base", "man-made", 1)}


def test_a_section_with_every_run_recorded_shows_them_all_its_sources_too(tmp_path):
    """A section whose transfers copy from sources trained on other data (``lowdata``): once every run is recorded,
    all are shown (the sources have no base of their own to be measured against), so no "in progress" line."""
    P = load_profile("smoke")
    plan = section_plan(P, "lowdata")
    assert any(p.labels["treatment"] == "source" for p in plan)
    (tmp_path / "runs").mkdir()
    store = RunStore(tmp_path / "runs")
    for p in plan:
        if store.result(run_id(p.config)) is None:
            fake_record(store, p.config, top1=0.5)
    assert len(recorded(plan, store)) == len(plan)


def test_reverse_plans_the_named_treatments_into_the_other_half_too(tmp_path):
    """A section with a target and ``reverse``: the named treatments also go into the other half, copying from
    the same seed's bases (planned once), with all units only; a reverse without a target, or naming another
    treatment, is refused."""
    P = OmegaConf.load(PROFILES / "smoke.yaml")
    P.seeds = [0, 1]
    P.controls = {"architectures": ["ConvNeXt-atto"], "target": "natural", "reverse": ["random k=2"],
                  "treatments": {"identity": [1.0], "random k=2": [0.5, 1.0], "AnB": [1.0]}}
    OmegaConf.save(P, tmp_path / "rev.yaml")
    plan = section_plan(load_profile(tmp_path / "rev.yaml"), "controls")
    ids = [run_id(p.config) for p in plan]
    assert len(ids) == len(set(ids))
    runs = {(p.labels["treatment"], p.labels["target"], p.labels["seed"]) for p in plan}
    assert runs == {(t, h, s) for s in (0, 1) for t, h in [("base", "man-made"), ("base", "natural"),
                    ("identity", "natural"), ("random k=2", "natural"), ("AnB", "natural"), ("random k=2", "man-made")]}
    depths = {(p.labels["target"], p.labels["n"]) for p in plan if p.labels["treatment"] == "random k=2"}
    assert depths == {("natural", 6), ("natural", 12), ("man-made", 12)}  # ConvNeXt-atto: 12 depthwise units
    for bad in ({"reverse": ["BnB"]}, {"target": None}):
        OmegaConf.save(OmegaConf.merge(P, {"controls": bad}), tmp_path / "bad.yaml")
        with pytest.raises(MKFError, match="controls.reverse"):
            load_profile(tmp_path / "bad.yaml")


def test_more_seeds_plan_one_nets_deciding_runs_or_the_depths_asked(tmp_path):
    """``more_seeds``: an architecture's bases and all-units runs (reverse included) at seeds beyond the section's,
    or only some treatments' (a mapping); no partial depth unless asked (``all_depths``), no other net; a net the
    section lacks, a treatment it lacks, a seed that is not a number or an all_depths that is not a bool is refused."""
    P = OmegaConf.load(PROFILES / "smoke.yaml")
    P.seeds = [0]
    P.controls = {"architectures": ["ResNet-18", "ConvNeXt-atto"], "target": "natural", "reverse": ["random k=2"],
                  "treatments": {"random k=2": [0.5, 1.0], "AnB": [0.5, 1.0]}, "more_seeds": {"ConvNeXt-atto": [3]}}
    OmegaConf.save(P, tmp_path / "more.yaml")
    plan = section_plan(load_profile(tmp_path / "more.yaml"), "controls")
    three = {(p.labels["architecture"], p.labels["treatment"], p.labels["target"], p.labels["n"]) for p in plan
             if p.labels["seed"] == 3}
    assert three == {("ConvNeXt-atto", "base", "man-made", 0), ("ConvNeXt-atto", "base", "natural", 0),
                     ("ConvNeXt-atto", "random k=2", "natural", 12), ("ConvNeXt-atto", "AnB", "natural", 12),
                     ("ConvNeXt-atto", "random k=2", "man-made", 12)}
    assert {p.labels["seed"] for p in plan} == {0, 3}
    text = subtitle(load_profile(tmp_path / "more.yaml"), "controls")[1]
    assert "1 seed (0); ConvNeXt-atto: bases and all-units runs also at seeds 3." in text
    # a mapping names the treatments: only theirs (and the bases), the reverse ones among them
    P.controls.more_seeds = {"ConvNeXt-atto": [{"seeds": [3]}, {"seeds": [5], "treatments": ["AnB"]}]}
    OmegaConf.save(P, tmp_path / "few.yaml")
    few = load_profile(tmp_path / "few.yaml")
    five = {(p.labels["treatment"], p.labels["target"], p.labels["n"]) for p in section_plan(few, "controls")
            if p.labels["seed"] == 5}
    assert five == {("base", "man-made", 0), ("base", "natural", 0), ("AnB", "natural", 12)}
    assert {p.labels["seed"] for p in section_plan(few, "controls")} == {0, 3, 5}
    assert ("ConvNeXt-atto: bases and all-units runs also at seeds 3; ConvNeXt-atto: bases and AnB (all units) also at "
            "seeds 5.") in subtitle(few, "controls")[1]
    # all_depths: the group's treatments at every depth of the section (the reverse ones into the other half at all
    # units only, as the section plans them)
    P.controls.more_seeds = {"ConvNeXt-atto": {"seeds": [7], "treatments": ["random k=2"], "all_depths": True}}
    OmegaConf.save(P, tmp_path / "deep.yaml")
    deep = load_profile(tmp_path / "deep.yaml")
    seven = {(p.labels["treatment"], p.labels["target"], p.labels["n"]) for p in section_plan(deep, "controls")
             if p.labels["seed"] == 7}
    assert seven == {("base", "man-made", 0), ("base", "natural", 0), ("random k=2", "natural", 6),
                     ("random k=2", "natural", 12), ("random k=2", "man-made", 12)}
    assert "ConvNeXt-atto: bases and random k=2 (every depth) also at seeds 7." in subtitle(deep, "controls")[1]
    for bad in ({"ResNet-50": [3]}, {"ConvNeXt-atto": {"seeds": [5], "treatments": ["BnB"]}},
                {"ConvNeXt-atto": ["three"]}, {"ConvNeXt-atto": {"seeds": [5], "all_depths": "yes"}}):
        P.controls.more_seeds = bad
        OmegaConf.save(P, tmp_path / "bad.yaml")
        with pytest.raises(MKFError, match="controls.more_seeds"):
            load_profile(tmp_path / "bad.yaml")

@pytest.mark.integration
def test_plan_of_several_sections_plans_a_shared_run_once(tmp_path, capsys):
    """`mkf plan P figure3 figure4`: Figure 4's bases and full-depth runs are Figure 3's, planned once; the
    deciding runs of every section first, then the partial depths section by section."""
    from mkf_utils.cli import main

    P = OmegaConf.load(PROFILES / "smoke.yaml")
    P.data = {"name": "synthetic", "root": None, "per_class": 16, "test_per_class": 8}
    P.halves = {"man-made": "random-a:0", "natural": "random-b:0"}
    P.seeds = [0, 1]
    P.figure3 = {"architectures": ["ConvNeXt-atto"], "treatments": {"AnB": [0.5, 1.0]}, "target": "natural"}
    P.figure4 = {**P.figure3, "end": "last"}
    OmegaConf.save(P, tmp_path / "tiny.yaml")
    assert main(["plan", str(tmp_path / "tiny.yaml"), "figure3", "figure4", "--list", "--store", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("tiny.yaml figure3 + figure4: 0 of 10 runs recorded")  # 8 + 2 reverse partials
    ids = [line.split()[1] for line in lines[2:]]
    assert len(set(ids)) == len(ids) == 10
    n3 = {run_id(p.config) for p in section_plan(load_profile(tmp_path / "tiny.yaml"), "figure3")}
    assert [i in n3 for i in ids] == [True] * 8 + [False] * 2


@pytest.mark.integration  # plans every shipped profile
def test_orphaned_records_are_listed(tmp_path, capsys):
    """`mkf runs --orphans` lists a finished run that no profile plans (a profile changed since), and only it."""
    from mkf_utils.cli import main
    from mkf_utils.runindex import planned_ids

    planned = planned_ids()
    base = section_plan(load_profile("smoke"), "figure3")[0].config
    assert "smoke:figure3" in planned[run_id(base)]
    store = RunStore(tmp_path)
    fake_record(store, base, top1=0.5)
    orphan = fake_record(store, load_config(overrides={**OmegaConf.to_container(base), "seed": 12345}), top1=0.5)
    assert main(["runs", "--orphans", "--store", str(tmp_path)]) == 0
    assert capsys.readouterr().out.split() == [orphan]



def test_the_planned_runs_are_kept_under_a_digest_of_code_and_configs(monkeypatch):
    """The list of planned runs read back from its cache equals the one built; another digest builds it afresh."""
    from mkf_utils import runindex

    built = runindex._planned()
    assert (runindex.REPO / "build" / "planned" / f"{runindex._inputs_digest()}.json").is_file()
    runindex._planned.cache_clear()
    assert runindex._planned() == built
    runindex._planned.cache_clear()
    calls = []
    monkeypatch.setattr(runindex, "_inputs_digest", lambda: "changed")
    monkeypatch.setattr(runindex, "load_profile", lambda name: calls.append(name) or {s: None for s in runindex.SECTIONS})
    assert runindex._planned() == () and calls
    runindex._planned.cache_clear()
    (runindex.REPO / "build" / "planned" / "changed.json").unlink()

def test_a_figure_says_what_it_would_train_and_refuses_too_much(tmp_path, capsys):
    """With two of Figure 3's runs recorded (10 minutes each, on cuda), the rest would take hours on this CPU: the
    notebook's runs stop before training with a one-line error naming the fix; raised limits let them through."""
    from mkf_utils.figures import check_training

    P = load_profile("smoke")
    plan = section_plan(P, "figure3")
    store = RunStore(tmp_path)
    for p in plan[:2]:  # two bases, recorded without training
        fake_record(store, p.config, top1=0.5, train_time_s=600, device="cuda")
    with pytest.raises(MKFError, match="its records were trained on cuda, this machine trains on cpu"):
        check_training(P, plan, store, "figure3", "section figure3")
    assert f"2 of {len(plan)} runs recorded; {len(plan) - 2} to train here, about" in capsys.readouterr().out
    other = load_profile("smoke", {"allow_other_device": True})
    with pytest.raises(MKFError, match="takes about .* min, above the profile's train_limit_minutes=30.*SECTION=figure3"):
        check_training(other, plan, store, "figure3", "section figure3")
    check_training(load_profile("smoke", {"allow_other_device": True, "train_limit_minutes": None}), plan, store,
                   "figure3", "section figure3")
    check_training(P, plan[:2], store, "figure3", "section figure3")
    assert capsys.readouterr().out.splitlines()[-1] == "section figure3: all 2 runs recorded; nothing to train"


def test_an_optional_section_says_why_it_shows_nothing(tmp_path, capsys):
    """A notebook's optional part (the controls' lowdata and bankdepth) shows nothing, saying why, where the profile
    lacks the section or none of its runs is recorded; it trains nothing for that."""
    store = RunStore(tmp_path)
    assert optional_section_runs(load_profile("quick"), "bankdepth", store) is None
    assert capsys.readouterr().out == "this profile has no bankdepth section\n"
    P = load_profile("smoke")
    assert optional_section_runs(P, "bankdepth", store, recorded_only=True) is None
    planned = len(section_plan(P, "bankdepth"))
    assert capsys.readouterr().out.splitlines()[-1] == f"bankdepth: none of its {planned} planned runs is recorded with its base yet"
    assert not any(tmp_path.iterdir())


def test_training_order_puts_the_deciding_runs_first_seed_by_seed():
    """Bases and all-units runs of every section first, seed by seed; partial depths after, section by section;
    a run two sections share (Figure 4's full-depth runs are Figure 3's) once."""
    from mkf_utils.profiles import training_order

    P = load_profile("smoke", {"seeds": [0, 1], "figure4": {"architectures": ["ConvNeXt-atto"]},
                               "figure3": {"treatments": {"AnB": [1.0], "BnB": [1.0], "random-frozen": [1.0]}}})
    order = training_order(P, ["figure3", "figure4"])
    labels = [(p.labels["seed"], p.labels["n"] < p.labels["n_units"] and p.labels["n"] > 0, p.labels["end"])
              for p in order]
    first_partial = next(i for i, (_, partial, _) in enumerate(labels) if partial)
    assert not any(partial for _, partial, _ in labels[:first_partial])  # deciding runs first
    assert all(partial for _, partial, _ in labels[first_partial:])
    deciding_seeds = [s for s, _, _ in labels[:first_partial]]
    assert deciding_seeds == sorted(deciding_seeds)  # seed by seed
    ids = [run_id(p.config) for p in order]
    assert len(ids) == len(set(ids)) == len({run_id(p.config) for sec in ("figure3", "figure4")
                                             for p in section_plan(P, sec)})
    assert {e for _, partial, e in labels if partial} == {"last"}  # Figure 4's reverse partial depths


def test_plan_only_lists_the_matching_runs_with_their_sources(tmp_path, capsys):
    """`mkf plan --only REGEX` keeps the runs whose line matches and the bases they copy from; a pattern that
    matches nothing, or is not a regular expression, is a clear error."""
    from mkf_utils.cli import main

    args = ["plan", "smoke", "figure3", "--list", "--store", str(tmp_path)]
    assert main([*args, "--only", "ConvNeXt-atto AnB"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("smoke figure3: 0 of 12 runs recorded")  # 2 seeds: 2 bases, AnB at 2 depths x 2
    assert [" ".join(line.split()[2:5] + line.split()[6:]) for line in lines[2:6]] == [
        "ConvNeXt-atto base man-made seed=0", "ConvNeXt-atto base natural seed=0",
        "ConvNeXt-atto AnB natural→man-made seed=0", "ConvNeXt-atto AnB man-made→natural seed=0"]
    plan = training_order(load_profile("smoke"), ["figure3"])
    for bad, says in (("GoogLeNet", "matches none of the 40 planned runs"), ("k=(", "is not a regular expression")):
        with pytest.raises(MKFError, match=re.escape(says)):
            only(plan, bad)
