"""``mkf``: train a run or a profile's plan, list transfer units, splits and the run store, write its index and
the results pages.

    mkf train configs/quick.yaml --set model.name=convnext_atto transfer.n=4
    mkf units convnext_atto --kind depthwise --stem-stride 2 --image-size 32
    mkf splits show imagenet-manmade
    mkf runs
    mkf runs --orphans
    mkf records
    mkf index
    mkf results paper_figures/evidence
    mkf profile evidence
    mkf plan evidence figure3 --list
    mkf plan evidence-gpu figure3 figure4 figure5 --minutes 7
    mkf plan imagenet figure3 --executor slurm --gpus 8 --partition gpu
    mkf verify --runs 2
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .errors import MKFError

LOCAL_STORE = "runs-local"  # `mkf train`'s own runs: the committed records in runs/ are what profiles plan


def _train(args: argparse.Namespace) -> None:
    from .config import load_config, run_id
    from .runs import RunStore
    from .train import dist_info

    cfg = load_config(args.config, args.set)
    store = RunStore.default(args.store or os.environ.get("MKF_STORE") or LOCAL_STORE)
    lead = dist_info()[0] == 0  # under torchrun, rank 0 speaks
    if lead:
        print(f"run {run_id(cfg)} in {store.path(run_id(cfg))}", flush=True)
    result = store.run(cfg)
    if lead:
        print(json.dumps(result, indent=1))


def _units(args: argparse.Namespace) -> None:
    from .models import create_model
    from .units import map_sizes, transfer_units

    model = create_model(args.model, 10, args.stem_stride)
    units = transfer_units(model, args.kind)
    if not units:
        raise MKFError(f"{args.model} has no '{args.kind}' units", "try --kind conv or --kind block")
    if args.image_size is None:
        print("\n".join(units))
        return
    sizes = map_sizes(model, args.kind, args.image_size)
    print("\n".join(f"{u}\t{'x'.join(map(str, sizes[u]))}" for u in units))


def _splits(args: argparse.Namespace) -> None:
    from .splits import RANDOM_HALVES, list_splits, load_split

    if args.action is None:
        print("\n".join(list_splits()))
        return
    if args.action != "show" or not args.name:
        raise MKFError(f"unknown splits command '{' '.join(filter(None, [args.action, args.name]))}'",
                       "use `mkf splits` or `mkf splits show NAME`")
    if args.name.split(":")[0] in RANDOM_HALVES:
        raise MKFError(f"'{args.name}' is drawn from a dataset's own classes", "use it as data.split; "
                       "`mkf splits show` prints the shipped split files")
    split = load_split(args.name)
    for i, (c, d) in enumerate(zip(split.classes, split.descriptions)):
        print(f"{i}\t{c}\t{d}".rstrip())


def _runs(args: argparse.Namespace) -> None:
    import pandas as pd

    from .runs import RunStore

    store = RunStore.default(args.store)
    if args.orphans:
        from .runindex import planned_ids

        planned = planned_ids()
        for rid, _ in store.configs():
            if rid not in planned:
                print(rid)
        return
    df = store.collect()
    if df.empty:
        print(f"no finished runs in {store.root}")
        return
    cols = [c for c in ["run_id", "model.name", "data.name", "data.split", "transfer.mode", "transfer.units",
                        "transfer.end", "transfer.n", "seed", "optim.epochs", "top1", "train_time_s"] if c in df]
    with pd.option_context("display.width", 200, "display.max_rows", None):
        print(df[cols].to_string(index=False, float_format="%.4f"))


def _records(args: argparse.Namespace) -> None:
    from .runfolder import record_files
    from .runs import RunStore

    since = Path(args.since).stat().st_mtime if args.since else None
    for f in record_files(RunStore.default(args.store).root, since):
        print(f)


def _index(args: argparse.Namespace) -> None:
    from .runindex import index
    from .runs import RunStore

    store = RunStore.default(args.store)
    index(store).to_csv(args.out or store.root / "INDEX.csv", index=False)


def _results(args: argparse.Namespace) -> None:
    from .results import write

    for folder in args.folders:
        print(write(folder))


def _verify(args: argparse.Namespace) -> int:
    from .runs import RunStore
    from .verify import TOLERANCE, verify

    report = verify(RunStore.default(args.store), args.runs, args.seed, args.id or None)
    drift = report[~report.ok]
    print(f"{len(report) - len(drift)} of {len(report)} retrained runs agree with their records (bit for bit on "
          f"the same machine kind and thread count, else top-1 within {TOLERANCE})")
    return 1 if len(drift) else 0


def _profile(args: argparse.Namespace) -> None:
    from .profiles import check

    counts = check(args.name)
    print(f"profile {args.name}: " + ", ".join(f"{sec} {n} runs" for sec, n in counts.items()))


def _plan(args: argparse.Namespace) -> None:
    import time

    from .config import run_id
    from .executor import available_cores
    from .experiments import estimate_minutes, run_plan
    from .plans import describe
    from .profiles import load_profile, only, training_order
    from .runs import RunStore

    P = load_profile(args.profile)
    plan = training_order(P, args.section)
    if args.only:
        plan = only(plan, args.only)
    store = RunStore.default(args.store)
    results = [store.result(run_id(p.config)) for p in plan]
    missing = [p for p, r in zip(plan, results) if r is None]
    print(f"{Path(args.profile).name} {' + '.join(args.section)}: {len(plan) - len(missing)} of {len(plan)} runs "
          f"recorded in {store.root}", flush=True)
    if args.list:
        workers = args.workers or P.run_workers or available_cores()
        minutes, unknown = estimate_minutes(plan, results, workers)
        if unknown == len(missing) > 0:
            print("  left: no estimate (no run like them recorded)")
        elif missing:
            print(f"  left: about {minutes / 60:.1f} h with {workers} workers at the recorded times of like runs"
                  + (f", plus {unknown} runs with none recorded" if unknown else ""))
        for p in missing:
            print(f"  missing {run_id(p.config)}  {describe(p)}")
        return
    if args.executor:
        from .slurm import log_dir, submit

        jobs = submit([p.config for p in plan], store, args.executor, args.gpus, args.partition, args.timeout_min)
        print(f"{len(jobs)} jobs submitted ({args.executor}); logs in {log_dir(store)}")
        for rid, job in jobs.items():
            print(f"  job {job.job_id}  run {rid}")
        return
    deadline = time.monotonic() + 60 * args.minutes if args.minutes is not None else None
    run_plan(plan, store, workers=args.workers or P.run_workers, deadline=deadline)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="mkf", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="run (or find) one run and print its id and result")
    p.add_argument("config", help="YAML config (see configs/)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="dotted overrides")
    p.add_argument("--store", default=None, help=f"run store folder (default: $MKF_STORE, else ./{LOCAL_STORE}, "
                   "ignored by git; the figures' runs/ holds the profiles' records)")
    p.set_defaults(fn=_train)
    p = sub.add_parser("units", help="print a model's transfer units in forward order")
    p.add_argument("model")
    p.add_argument("--kind", default="depthwise", help="depthwise | pointwise | conv | block | separable")
    p.add_argument("--stem-stride", type=int, default=None)
    p.add_argument("--image-size", type=int, default=None, help="also print the map size each unit reads")
    p.set_defaults(fn=_units)
    p = sub.add_parser("splits", help="list class splits, or `show NAME`")
    p.add_argument("action", nargs="?", choices=["show"])
    p.add_argument("name", nargs="?")
    p.set_defaults(fn=_splits)
    p = sub.add_parser("runs", help="print the run store as a table")
    p.add_argument("--orphans", action="store_true", help="only list the finished runs that no profile plans any more")
    p.add_argument("--store", default=None, help="run store folder (default: $MKF_STORE or the repository's runs/)")
    p.set_defaults(fn=_runs)
    p = sub.add_parser("records", help="print the record files (config, metrics, result, reproductions) of every "
                       "finished run, one path a line: what `make records` stages for a commit")
    p.add_argument("--store", default=None, help="run store folder (default: $MKF_STORE or the repository's runs/)")
    p.add_argument("--since", default=None, metavar="FILE", help="only files modified after FILE was")
    p.set_defaults(fn=_records)
    p = sub.add_parser("index", help="write INDEX.csv in the run store: each recorded run's profile, section, net, "
                       "treatment, seed and top-1 (`make records` keeps runs/INDEX.csv current)")
    p.add_argument("--store", default=None, help="run store folder (default: $MKF_STORE or the repository's runs/)")
    p.add_argument("--out", default=None, help="where to write it (default: INDEX.csv in the store)")
    p.set_defaults(fn=_index)
    p = sub.add_parser("results", help="write each figures folder's README.md: the figures and their readings, "
                       "computed from the tables there")
    p.add_argument("folders", nargs="+", help="figures folders, e.g. paper_figures/evidence")
    p.set_defaults(fn=_results)
    p = sub.add_parser("profile", help="check a profile (configs/profiles/NAME.yaml or a path) and count its runs")
    p.add_argument("name")
    p.set_defaults(fn=_profile)
    p = sub.add_parser("plan", help="train the missing runs of a profile's sections, seed by seed (or --list them)")
    p.add_argument("profile", help="configs/profiles/NAME.yaml or a path")
    p.add_argument("section", nargs="+", help="a section of the profile: figure3, figure4, figure5, study, controls, "
                   "lowdata, crossdataset, ... (several: one plan)")
    p.add_argument("--only", default=None, metavar="REGEX", help="only the runs whose line in --list matches (e.g. "
                   "'seed=2', 'k=1 |identity'), with the sources they copy from: to train the deciding runs first")
    p.add_argument("--list", action="store_true", help="only count the recorded runs, estimate the time left from them and list the missing ones")
    p.add_argument("--workers", type=int, default=None, help="runs trained at once (default: the profile's run_workers, "
                   "else one per core)")
    p.add_argument("--minutes", type=float, default=None, help="start no run after this many minutes (runs started "
                   "finish): for a machine lent for a while")
    p.add_argument("--store", default=None, help="run store folder (default: $MKF_STORE or the repository's runs/)")
    p.add_argument("--executor", choices=["slurm", "local", "auto"], default=None, help="submit each missing run as a "
                   "job through submitit (slurm; local: subprocesses here; auto: slurm where sbatch is) instead of "
                   "training here; the store must be on a file system the nodes share")
    p.add_argument("--gpus", type=int, default=0, help="GPUs per job (one task each: the run trains over them)")
    p.add_argument("--partition", default=None, help="SLURM partition")
    p.add_argument("--timeout-min", type=int, default=24 * 60, help="a job's time limit in minutes")
    p.set_defaults(fn=_plan)
    p = sub.add_parser("verify", help="retrain recorded runs drawn at random and compare them with their records")
    p.add_argument("--runs", type=int, default=2, help="how many runs to draw (default 2)")
    p.add_argument("--seed", type=int, default=None, help="seed of the draw (default: a new draw each time)")
    p.add_argument("--id", nargs="*", default=[], help="retrain these run ids instead of a random draw")
    p.add_argument("--store", default=None, help="run store folder (default: $MKF_STORE or the repository's runs/)")
    p.set_defaults(fn=_verify)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    status = 0
    try:
        status = args.fn(args)
    except MKFError as e:
        print(f"mkf: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `mkf splits show X | head`
        sys.stderr.close()
    except KeyboardInterrupt:
        print("mkf: interrupted; finished epochs are checkpointed and resume on the next call", file=sys.stderr)
        return 130
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
