#!/bin/bash
# Train a GPU profile's missing runs on a lent GPU machine for a fixed time; the finished runs' records are packed
# into $OUT/records.tar as they finish (so a killed command still returns them). Unpack here with
#   tar xf records.tar -C runs/ && make records
# Run from the repository root of a clean checkout, with the packages the GPU machine lacks (omegaconf, timm at
# the pinned versions) copied to .device/site and the checkout's state in .device/REVISION (written by
#   git rev-parse HEAD > .device/REVISION; git status --porcelain --untracked-files=no | grep -q . && echo 1 >> .device/REVISION
# since the copy's own .git may not be the checkout's):
#   OUT=/tmp/out MINUTES=6 bash scripts/device_evidence.sh evidence-gpu figure5 controls figure3 figure4 masterkey
# (deciding runs first, seed by seed across the sections: see mkf_utils.profiles.training_order)
set -u
PROFILE=${1:-evidence-gpu}; shift || true
SECTIONS=${*:-figure5 controls figure3 figure4 masterkey}
MINUTES=${MINUTES:-6}          # start no run after this many minutes of the plan
WORKERS=${WORKERS:-}           # runs at once (default: the profile's run_workers)
SMOKE=${SMOKE:-1}              # 0: skip the smoke runs and use bf16 + channels_last (seen working on an H200)
HARD=${HARD:-$(( ${MINUTES%.*} * 60 + 120 ))}  # then kill what still trains after this many seconds
BENCH_ARGS=${BENCH_ARGS:---device cuda --image-size 32 224 --batch 256 --steps 30 --workers $(nproc)}  # at the end
OUT=${OUT:-/tmp/mkf-out}; STORE=${STORE:-/tmp/mkf-store}; PY=${PY:-python3}
case $PY in */*) PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")";; esac  # pack() runs it from the store
mkdir -p "$OUT" "$STORE"
[ -d .device/site ] && export PYTHONPATH="$PWD/.device/site:$PWD" || export PYTHONPATH="$PWD"
export MKF_CODE_REVISION=$(sed -n 1p .device/REVISION 2>/dev/null) MKF_CODE_DIRTY=$(sed -n 2p .device/REVISION 2>/dev/null)
[ -n "$MKF_CODE_DIRTY" ] || MKF_CODE_DIRTY=0
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
exec > >(tee -a "$OUT/log.txt") 2>&1
date; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1; nproc
$PY -c "import torch, timm, omegaconf; print('torch', torch.__version__, 'timm', timm.__version__, 'cuda', torch.cuda.is_available())"

# The store starts with the records (`mkf records`: no weights or checkpoints travel): recorded runs are not trained
# again, and a transfer whose base is recorded retrains the base first and checks it against its record
# (mkf_utils.verify).
(cd runs && $PY -m mkf_utils.cli records --store . | xargs -r cp --parents -t "$STORE")
touch /tmp/records-stamp

pack() {  # the record files (mkf records: config, metrics, result, reproductions) written here, atomically replaced
  (cd "$STORE" && $PY -m mkf_utils.cli records --store . --since /tmp/records-stamp | xargs -r tar cf "$OUT/records.tmp") &&
    [ -f "$OUT/records.tmp" ] && mv -f "$OUT/records.tmp" "$OUT/records.tar"
  return 0
}

# The runtime this machine runs (bf16 autocast and channels_last, else safer settings): runtime keys are not
# part of a run's id, and each record says what it ran with.
case $PROFILE in *.yaml|*.yml) SRC=$PROFILE;; *) SRC=configs/profiles/$PROFILE.yaml;; esac
[ -f "$SRC" ] || { echo "no profile $SRC: name one in configs/profiles/ or give a YAML path"; exit 1; }
PROF=/tmp/profile-$(basename "$PROFILE" .yaml).yaml; ok=""
for rt in "bf16 true" "fp32 true" "fp32 false"; do
  set -- $rt
  if $PY - "$SRC" "$PROF" "$1" "$2" "$SMOKE" <<'PY'
import sys

import yaml

src, dest, amp, cl, smoke = sys.argv[1:]
raw = yaml.safe_load(open(src).read())
raw.setdefault("runtime", {}).update(amp=amp, channels_last=cl == "true")
open(dest, "w").write(yaml.safe_dump(raw, sort_keys=False))
if smoke == "0":  # no smoke runs: nothing to import
    sys.exit(0)
import tempfile, time

from mkf_utils.profiles import load_profile, section_plan
from mkf_utils.runs import RunStore

P = load_profile(dest, {"data": {"per_class": 16, "test_per_class": 8}, "batch_size": 16, "optim": {"epochs": 1}, "seeds": [0]})
store = RunStore(tempfile.mkdtemp())
bases = [q for q in section_plan(P, "figure3") if q.labels["treatment"] == "base"]
for p in (bases[0], bases[-1]):  # the first architecture's and the last one's
    t = time.time(); r = store.run(p.config)
    print(f"smoke {p.labels['architecture']} amp={amp} channels_last={cl}: top-1 {r['top1']:.3f} in {time.time() - t:.1f} s")
PY
  then echo "runtime: amp=$1 channels_last=$2"; ok=1; break; fi
done
[ -n "$ok" ] || { echo "no runtime setting trains here: stopping"; exit 1; }

( while sleep 15; do pack; done ) & PACKER=$!
timeout -k 10 "$HARD" $PY -m mkf_utils.cli plan "$PROF" $SECTIONS --minutes "$MINUTES" --store "$STORE" ${WORKERS:+--workers $WORKERS}
echo "plan exit $? at $(date)"
kill $PACKER 2>/dev/null; pack
tar tf "$OUT/records.tar" 2>/dev/null | grep -c result.json | xargs echo "runs finished here:"

# The engine against a bare loop at 32 px (in memory, on the GPU) and 224 px (JPEGs through workers): at most 3 min
timeout -k 10 180 $PY benchmarks/throughput.py $BENCH_ARGS > "$OUT/benchmark.txt" 2>&1; echo "benchmark exit $?"
cat "$OUT/benchmark.txt"
