#!/usr/bin/env bash
# The GPU checks of issue 18 in one command (docs/gpu.md). Run from anywhere, after `make install`:
#
#   OUT=/tmp/gpu-out scripts/gpu_check.sh            # pytest -m gpu, bench_gpu.py --device cuda, train end to end
#   DEVICE=cpu STEPS="train" TRAIN_N=200 scripts/gpu_check.sh   # the CPU-safe part (the train job) on a CPU box
#
# Knobs (environment): OUT (where logs and the train data dir go; default a temp dir), PY (the venv's
# python; default .venv/bin/python), DEVICE (cuda | cpu), STEPS (any of "pytest bench train"),
# BENCH_ARGS (extra bench_gpu.py flags, e.g. "--tiny"), TRAIN_N (simulated rows of the first train).
# Installs nothing. Every step runs even if one before it failed; the exit status says whether all passed.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PY:-$ROOT/.venv/bin/python}"
TONEFLOW="${TONEFLOW:-$(dirname "$PY")/toneflow}"
DEVICE="${DEVICE:-cuda}"
STEPS="${STEPS:-pytest bench train}"
TRAIN_N="${TRAIN_N:-600}"
BENCH_ARGS="${BENCH_ARGS:-}"
OUT="${OUT:-$(mktemp -d -t toneflow-gpu-XXXXXX)}"
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
if [ "$DEVICE" = cpu ]; then
    export CUDA_VISIBLE_DEVICES=""  # the students pick CUDA whenever torch sees it
fi

failed=()
summary() { echo "$1" | tee -a "$OUT/summary.txt"; }
step() {  # step NAME COMMAND...: run, log to $OUT/NAME.log, record pass/fail
    local name="$1"; shift
    echo "== $name: $*" | tee -a "$OUT/summary.txt"
    local start=$SECONDS
    "$@" 2>&1 | tee "$OUT/$name.log"
    local rc=${PIPESTATUS[0]}
    summary "== $name: rc=$rc in $((SECONDS - start)) s"
    [ "$rc" = 0 ] || failed+=("$name")
}
wants() { [[ " $STEPS " == *" $1 "* ]]; }

: > "$OUT/summary.txt"
summary "toneflow gpu_check: device=$DEVICE steps='$STEPS' out=$OUT commit=$(git rev-parse --short HEAD 2>/dev/null || echo none)"
if [ "$DEVICE" = cuda ]; then
    nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true
    step cuda "$PY" -c "import torch, bitsandbytes; assert torch.cuda.is_available(), 'torch sees no CUDA'; \
print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0), 'bitsandbytes', bitsandbytes.__version__)"
fi

if wants pytest; then
    # -rs lists the skips: on a GPU machine nothing marked gpu may skip.
    step pytest "$PY" -m pytest -m gpu -q -rs -p no:cacheprovider tests
fi

if wants bench; then
    # shellcheck disable=SC2086  # BENCH_ARGS is a list of flags
    step bench "$PY" benchmarks/bench_gpu.py --device "$DEVICE" $BENCH_ARGS
fi

train_end_to_end() {
    # A first model from simulated, offline-teacher-labelled requests, then `--incremental` on those rows
    # plus new ones (ids prefixed: simulate_dataset numbers rows from sim-000000 in every file, and the
    # incremental run tells new rows from old by id, trainer/train.py incremental_rows).
    local work="$OUT/train"
    rm -rf "$work" && mkdir -p "$work"
    export TONEFLOW_DATA_DIR="$work/data"
    "$PY" - "$work" "$TRAIN_N" <<'EOF' || return 1
import json
import sys
from pathlib import Path

from streams.simulator import simulate_dataset

work, n = Path(sys.argv[1]), int(sys.argv[2])
first = simulate_dataset(work / "a.jsonl", n, seed=0).read_text(encoding="utf-8")
new = simulate_dataset(work / "new.jsonl", max(n // 3, 20), seed=1).read_text(encoding="utf-8").splitlines()
renamed = "".join(json.dumps({**json.loads(line), "id": "new-" + json.loads(line)["id"]}) + "\n" for line in new)
(work / "b.jsonl").write_text(first + renamed, encoding="utf-8")
print(f"simulated {n} + {len(new)} rows under {work}")
EOF
    local common=(--epochs 2 --max-minutes 3 --no-progress --json)
    "$TONEFLOW" train --input "$work/a.jsonl" "${common[@]}" > "$work/first.json" || return 1
    "$TONEFLOW" train --incremental --input "$work/b.jsonl" "${common[@]}" > "$work/incremental.json" || return 1
    "$PY" - "$work" <<'EOF'
import json
import sys
from pathlib import Path

from foundation.settings import get_settings
from trainer import registry

work = Path(sys.argv[1])
first, inc = (json.loads((work / f).read_text()) for f in ("first.json", "incremental.json"))
for label, out in (("first", first), ("incremental", inc)):
    print(f"{label}: {out.get('version')} student={out.get('student')} overall={out.get('overall')} "
          f"train_rows={out.get('train_rows')} fit_seconds={out.get('fit_seconds')} promoted={out.get('promoted')}")
manifest = registry.manifest(get_settings(), inc["version"])
device = "cuda" if __import__("torch").cuda.is_available() else "cpu"
print(f"incremental parent={manifest.get('parent')} incremental={manifest['config']['incremental']} device={device}")
assert first["promoted"], f"the first model was not promoted: {first.get('reason')}"
assert manifest.get("parent") == first["version"], "the incremental run did not continue from the first model"
EOF
}

if wants train; then
    step train train_end_to_end
fi

if [ ${#failed[@]} -eq 0 ]; then
    summary "gpu_check: all passed (logs in $OUT)"
else
    summary "gpu_check: FAILED: ${failed[*]} (logs in $OUT)"
    exit 1
fi
