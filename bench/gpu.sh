#!/usr/bin/env bash
# The GPU serving benchmark, unattended and offline, in under 8 minutes:
#
#   bench/gpu.sh                       # on a machine with an NVIDIA GPU and torch built with CUDA
#   bench/gpu.sh --device cpu --quick  # a dry run anywhere (tiny rounds)
#   bench/gpu.sh --no-tests            # the benchmark only
#   (other options go to bench/gpu.py: --rounds, --batches, --precisions, ...)
#
# 1. Finds a Python whose torch sees CUDA ($PYTHON, else python3, python,
#    /opt/conda/bin/python, ...). Nothing is downloaded; the tree is used in
#    place through PYTHONPATH (sdk:serving:training), nothing is installed.
# 2. Checks what gan-server, the SDK and the tests import (bench/gpu_env.py),
#    and where something is missing or too old unpacks the wheels carried in
#    bench/.wheels/ (made by bench/gpu_wheels.sh on a machine with network)
#    into a temporary folder put first on PYTHONPATH; then names whatever is
#    still missing and stops.
# 3. Runs the gpu-marked tests (CUDA against CPU bytes, latents against numpy),
#    at most 120 s.
# 4. Runs bench/gpu.py: in-process images/s at batch 1, 256, 4096 in fp32 and
#    fp16, end to end through gan-server at n = 256 and 4096, 64 concurrent
#    single-image requests with batching on and off.
#
# Results: gpu.json, gpu.md, gpu-tests.txt and server logs in $OUT if set,
# else bench/out/. Exit status: 0 when the tests passed and every section
# ran; 3 no usable torch / CUDA; 4 missing packages; 5 tests failed; 6 the
# benchmark failed or was cut short.
set -uo pipefail

START=$SECONDS
DEADLINE=${GPU_BENCH_DEADLINE_S:-460}  # the whole script, seconds
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
cd "$ROOT"

DEVICE=cuda
TESTS=1
ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --device) DEVICE=$2; shift 2 ;;
        --device=*) DEVICE=${1#--device=}; shift ;;
        --no-tests) TESTS=0; shift ;;
        *) ARGS+=("$1"); shift ;;
    esac
done
OUT_DIR=${OUT:-$ROOT/bench/out}
mkdir -p "$OUT_DIR"
log() { echo "[gpu.sh $((SECONDS - START))s] $*"; }

# -- 1. Python with torch (and CUDA) ------------------------------------------------
PY=""
for cand in "${PYTHON:-}" python3 python /opt/conda/bin/python /usr/local/bin/python3 /usr/bin/python3 \
    "$ROOT/.venv/bin/python"; do
    [ -n "$cand" ] || continue
    command -v "$cand" >/dev/null 2>&1 || continue
    if "$cand" -c "import torch" >/dev/null 2>&1; then
        if [ "$DEVICE" != cuda ] || "$cand" -c "import torch, sys; sys.exit(not torch.cuda.is_available())" \
            >/dev/null 2>&1; then
            PY=$(command -v "$cand")
            break
        fi
        [ -n "$PY" ] || NO_CUDA=$cand
    fi
done
if [ -z "$PY" ]; then
    if [ -n "${NO_CUDA:-}" ]; then
        log "error: $NO_CUDA has torch, but torch.cuda.is_available() is False:"
        "$NO_CUDA" -c "import torch; print('  torch', torch.__version__, 'built for CUDA', torch.version.cuda)"
        log "  a CPU-only torch, or no usable NVIDIA driver/GPU (nvidia-smi?). --device cpu for a dry run."
    else
        log "error: no Python with torch found; set PYTHON=/path/to/python (torch with CUDA)"
    fi
    exit 3
fi
log "python: $PY"
"$PY" -c "import torch; print('  torch', torch.__version__, '| CUDA', torch.version.cuda, '| available', \
torch.cuda.is_available(), '|', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU')"

# -- 2. our packages and what they import ------------------------------------------------
export PYTHONPATH="$ROOT/sdk:$ROOT/serving:$ROOT/training${PYTHONPATH:+:$PYTHONPATH}"
CHECK=(check)
[ "$TESTS" = 1 ] && CHECK+=(--tests)
if ! "$PY" bench/gpu_env.py "${CHECK[@]}" >"$OUT_DIR/env-check.txt" 2>&1; then
    cat "$OUT_DIR/env-check.txt"
    if [ -d "$HERE/.wheels" ]; then
        SITE=$(mktemp -d "${TMPDIR:-/tmp}/gan-bench-site.XXXXXX")
        trap 'rm -rf "$SITE"' EXIT
        log "unpacking the carried wheels (bench/.wheels) into $SITE"
        "$PY" bench/gpu_env.py unpack "$HERE/.wheels" "$SITE"
        export PYTHONPATH="$ROOT/sdk:$ROOT/serving:$ROOT/training:$SITE${PYTHONPATH#"$ROOT/sdk:$ROOT/serving:$ROOT/training"}"
    else
        log "no bench/.wheels here: run bench/gpu_wheels.sh on a machine with network and carry bench/.wheels"
    fi
    if ! "$PY" bench/gpu_env.py "${CHECK[@]}" >"$OUT_DIR/env-check.txt" 2>&1; then
        cat "$OUT_DIR/env-check.txt"
        if [ "$TESTS" = 1 ] && "$PY" bench/gpu_env.py check >/dev/null 2>&1; then
            log "pytest is missing: skipping the tests, running the benchmark"
            TESTS=0
        else
            log "error: packages missing (above); install them or carry their wheels in bench/.wheels"
            exit 4
        fi
    fi
fi
log "imports ok (gan-server --backend torchscript, the SDK$([ "$TESTS" = 1 ] && echo ', pytest'))"

# -- 3. the gpu-marked tests -------------------------------------------------------------
STATUS=0
if [ "$TESTS" = 1 ]; then
    MARK=gpu
    [ "$DEVICE" = cuda ] || MARK="not slow and not gpu"  # a dry run: the same files' CPU tests
    log "tests (-m '$MARK') ..."
    timeout -k 10 120 "$PY" -m pytest -q -p no:cacheprovider -W ignore::DeprecationWarning -m "$MARK" \
        tests/contract/test_request_torch.py tests/contract/test_counter_rng.py tests/serving/test_device_path.py \
        >"$OUT_DIR/gpu-tests.txt" 2>&1
    rc=$?
    grep -E "^(FAILED|ERROR)|passed|failed|no tests ran" "$OUT_DIR/gpu-tests.txt" | tail -n 20
    if [ $rc -ne 0 ]; then
        log "tests failed (exit $rc; 124 = cut at 120 s): $OUT_DIR/gpu-tests.txt"
        STATUS=5
    fi
fi

# -- 4. the benchmark --------------------------------------------------------------------
LEFT=$((DEADLINE - (SECONDS - START)))
BUDGET=$((LEFT - 130))  # no section starts after this; the longest takes about 100 s
[ $BUDGET -lt 30 ] && BUDGET=30
log "benchmark (--device $DEVICE, ${LEFT}s left) ..."
timeout -k 10 "$LEFT" "$PY" bench/gpu.py --device "$DEVICE" --out "$OUT_DIR" --budget-s "$BUDGET" "${ARGS[@]}"
rc=$?
if [ $rc -ne 0 ]; then
    log "benchmark exit $rc (124 = cut at the deadline); partial results in $OUT_DIR/gpu.json"
    [ $STATUS -eq 0 ] && STATUS=6
fi
log "done: $OUT_DIR (gpu.md, gpu.json$([ -f "$OUT_DIR/gpu-tests.txt" ] && echo ', gpu-tests.txt'))"
exit $STATUS
