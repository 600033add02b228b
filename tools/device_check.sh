#!/usr/bin/env bash
# The GPU hour, in one command, on a bare stack.
#
#   bash tools/device_check.sh OUT_DIR [--cpu] [--wheels DIR]
#
# Needs only a python3 with torch and triton (plus pytest, hypothesis and
# a C++ compiler): no .venv, no `make env`, no package index. With
# --wheels DIR (mmcv, mmengine, mmseg, mmpretrain, openmim and their
# pure-Python needs, built for this Python and torch: for the GPU machine
# ../shared/wheels/device-cp312/, copied into an ignored folder of the
# checkout that the device call carries) they are installed into a
# temporary --target at the start and the model parts run; without it
# those parts are skipped and say so. Builds what it needs under
# build/device/ and build/kernels/ of this checkout. Parts, in order of
# value, each time-boxed, the whole within DEVICE_CHECK_BUDGET_S (default
# 480 s on a GPU, 900 s in the rehearsal: what a part would start past it
# is "not reached"):
#
#   1. the operator tests from pytest on CUDA (tests/test_ops.py's
#      *-cuda cases, the triton and csr backends' own tests): values and
#      gradients against the equations and the reference, float64
#      gradcheck, the deterministic backward bitwise, half precision,
#      NaN and off-map points, torch.compile and export;
#   2. tools/analysis_tools/gpu_report.py: every CUDA backend against
#      float64, time and peak memory beside dense attention and SDPA,
#      the resource table for this GPU's architecture;
#   3. (wheels) SSANet R101 on generated Cityscapes-format data at
#      512x1024 through `mim train --launcher pytorch` (DDP, SyncBN, the
#      plugin's wrapper, the Triton op), 30 iterations in fp32 and with
#      --amp: finite, falling loss, s / iter, peak memory; `mim test` of
#      the fp32 checkpoint (mIoU printed) and one MMSegInferencer call;
#   4. (wheels) the paper's Table 2: benchmark_models.py at 2x3x1024x2048,
#      Baseline / +PPM / +ASPP / +NL / +SNL, fp32, fp16 and bf16, in one
#      process, interleaved;
#   5. the Triton kernel under compute-sanitizer memcheck at one small
#      size (forward, default and deterministic backward);
#   6. the fused C++ kernel built against this torch per ISA variant
#      (built at the start, beside the GPU parts: tools/check_kernel.sh
#      PHASE=build, then PHASE=test): its tests and the differential fuzz
#      on every variant this CPU executes, under ASan + UBSan where gcc's
#      runtime is there;
#   7. benchmark_threads.py: the C++ kernel's thread scaling (1-16).
#
# --cpu (or no CUDA device): the rehearsal `.ci/run` makes on a bare venv
# (tools/rehearse_device_check.sh), the same parts at tiny sizes: the
# operator tests on CPU tensors (Triton through its interpreter), a
# couple of iterations, compute-sanitizer's script without the sanitizer.
#
# Writes at most 8 files into OUT_DIR: summary.md, cpu.txt, tests.log
# (parts 1 and 5), report.md (2), model.log (3), table2.md (4),
# kernel.log (6), threads.md (7). Exit status 1 if a part failed or
# timed out.
#
#   PYTHON=python3   the interpreter (default python3)
set -uo pipefail
cd "$(dirname "$0")/.."
usage="usage: bash tools/device_check.sh OUT_DIR [--cpu] [--wheels DIR]"
[ $# -ge 1 ] || { echo "$usage" >&2; exit 2; }
OUT=$1
shift
MODE=auto
WHEELS=""
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) MODE=cpu ;;
    --wheels) [ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }
              WHEELS=$2; shift ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
  shift
done
if [ -n "$WHEELS" ] && ! ls "$WHEELS"/*.whl >/dev/null 2>&1; then
  echo "--wheels $WHEELS: no .whl files there" >&2; exit 2
fi
PY=${PYTHON:-python3}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
rm -f "$OUT"/*.tmp
START=$(date +%s)
export PYTHONUNBUFFERED=1
unset SSANET_CPP_EXTENSION TRITON_INTERPRET

if [ "$MODE" = auto ]; then
  if "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    MODE=gpu
  else
    MODE=cpu
  fi
fi
# A GPU run is kept short; the rehearsal on 2 cores needs longer.
if [ "$MODE" = gpu ]; then BUDGET=${DEVICE_CHECK_BUDGET_S:-480}
else BUDGET=${DEVICE_CHECK_BUDGET_S:-900}; fi
elapsed() { echo $(( $(date +%s) - START )); }
# A part's time box: what it asks for, at most what the budget has left.
box() { local left=$(( BUDGET - $(elapsed) )); echo $(( $1 < left ? $1 : left )); }

STATUS="$OUT/status.tmp"  # one line per part (parts may run in subshells)
record() { echo "| $1 | $2 | $3 s |" >>"$STATUS"; echo "== part $1: $2 ($3 s)"; }
outcome() {  # exit code of `timeout` -> a word
  case "$1" in 0) echo passed ;; 124|137) echo "TIMED OUT" ;; *) echo "FAILED (exit $1)" ;; esac
}
last_line() {  # a failed part's last words, into the summary
  echo "| (its last line) | $(grep . "$1" 2>/dev/null | tail -1 | tr '|' '/' | cut -c1-300) | |" >>"$STATUS"
}
# run_part NAME WANTED_S LOG CMD...: time-boxed; "not reached" when the
# budget has less than 20 s for it.
run_part() {
  local name=$1 limit t rc log=$3
  limit=$(box "$2")
  shift 3
  if [ "$limit" -lt 20 ]; then
    record "$name" "not reached (budget of $BUDGET s spent)" 0
    return 0
  fi
  t=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" >>"$log" 2>&1
  rc=$?
  record "$name" "$(outcome $rc)" $(( $(date +%s) - t ))
  [ $rc = 0 ] || last_line "$log"
  return $rc
}

# The OpenMMLab stack from the wheels, into a temporary --target.
SITE=""
if [ -n "$WHEELS" ]; then
  SITE=$(mktemp -d)
  trap 'rm -rf "$SITE"' EXIT
  if "$PY" -m pip install -q --no-index --no-deps --no-compile \
      --disable-pip-version-check --target "$SITE" "$WHEELS"/*.whl \
      >"$OUT/wheels.tmp" 2>&1; then
    export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
    export PATH="$SITE/bin:$PATH"
  else
    cat "$OUT/wheels.tmp"; echo "the wheels in $WHEELS did not install" >&2
    SITE=""
  fi
fi
# The model parts (3, 4) need the wheels' stack importable: asked once.
MODELS=0
[ -n "$SITE" ] && "$PY" -c 'import mmcv.ops, mmseg, mmengine, mim' \
  >/dev/null 2>&1 && MODELS=1

# The machine: CPU model, flags, and what the stack is.
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "mode: $MODE; budget $BUDGET s; wheels: ${WHEELS:-none}"
  grep -m1 '^model name' /proc/cpuinfo || true
  echo "cpus: $(nproc)"
  grep -m1 '^flags' /proc/cpuinfo || true
  "$PY" -c 'import sys, numpy, torch, triton; print("python", sys.version.split()[0], "| numpy", numpy.__version__, "| torch", torch.__version__, "| triton", triton.__version__, "| cuda", torch.version.cuda, "|", torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU")'
  "$PY" -c 'import mmcv, mmengine, mmseg; print("mmcv", mmcv.__version__, "| mmengine", mmengine.__version__, "| mmseg", mmseg.__version__)' 2>/dev/null || echo "mmcv/mmengine/mmseg: not importable"
  [ "$MODE" = gpu ] && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv 2>&1
  gcc --version | head -1 || echo "gcc: missing"
} >"$OUT/cpu.txt" 2>&1
cat "$OUT/cpu.txt"

# Which ISA variants this CPU executes (check_kernel.sh knows the flags
# each needs); on a GPU machine all three are built, those it runs tested.
isa_runs() { bash tools/check_kernel.sh --runs "$1" 2>/dev/null; }
ISAS=(x86-64-v4 x86-64-v3 x86-64)
if [ "$MODE" = cpu ]; then  # the rehearsal: only what runs here
  runs=(); for isa in "${ISAS[@]}"; do isa_runs "$isa" && runs+=("$isa"); done
  ISAS=("${runs[@]}")
fi
best=""
for isa in "${ISAS[@]}"; do isa_runs "$isa" && { best=$isa; break; }; done
if [ "$MODE" = gpu ] && [ -f "$(gcc -print-file-name=libasan.so 2>/dev/null)" ]; then
  SANITIZE=1; kernel_kind="ASan + UBSan builds"
elif [ "$MODE" = gpu ]; then
  SANITIZE=0; kernel_kind="plain builds: no ASan runtime (gcc's libasan.so) here"
else  # CI runs the sanitizer builds in `make kernel-check`
  SANITIZE=0; kernel_kind="plain builds (CPU rehearsal; sanitizer builds: make kernel-check)"
fi

# check_kernel.sh for each ISA at once, one log each; the exit status of
# the worst. $1: phase, $2: time limit, $3: SANITIZE, then the ISAs.
per_isa() {
  local phase=$1 limit=$2 san=$3 pids=() rc=0 isa
  shift 3
  for isa in "$@"; do
    timeout --kill-after=10 "$limit" env PYTHON="$PY" SANITIZE="$san" PHASE="$phase" \
      bash tools/check_kernel.sh "$isa" >"$OUT/$phase-$isa-$san.tmp" 2>&1 &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || rc=$?; done
  return $rc
}

# Part 6's builds start now, beside the GPU parts (CPU work): one per ISA,
# and a plain one of the best variant for part 7's timings.
build_start=$(date +%s)
(
  rc=0
  [ "$SANITIZE" = 1 ] && [ -n "$best" ] && { per_isa build 400 0 "$best" & plain=$!; }
  per_isa build 400 "$SANITIZE" "${ISAS[@]}" || rc=$?
  [ -n "${plain:-}" ] && { wait "$plain" || rc=$?; }
  exit $rc
) &
builds=$!

# Part 1: the operator tests. On a GPU the CUDA cases (ids backend-cuda)
# and the triton backend's own tests (on CUDA tensors there); in the
# rehearsal a few CPU cases, Triton through its interpreter.
tests=(tests/test_ops.py tests/test_backend_csr.py tests/test_backend_triton.py
       tests/test_triton_launch_table.py)
if [ "$MODE" = gpu ]; then
  select='cuda or triton or refuse'
else
  # (the C++ kernel is built in part 6 and tested there)
  select='cpu and not cpp and (matches_the_equations or coalesced or refuse)'
  tests=(tests/test_ops.py tests/test_backend_csr.py)
fi
"$PY" -c 'import mmcv.ops' >/dev/null 2>&1 || select="($select) and not mmcv_deform_conv"
run_part "1. operator tests (pytest -k '$select')" 200 "$OUT/tests.log" \
  "$PY" -m pytest "${tests[@]}" -k "$select" -q -p no:cacheprovider -o addopts= -rfEs

# Part 2: the GPU report.
if [ "$MODE" = gpu ]; then
  report=(--repeats 5 --train-configs)  # (training: part 3)
else
  report=(--device cpu --sizes 6x8 --batches 1 --dtypes fp32 --cq 4 --c 6
          --k 9 --check-size 5x6 --repeats 1 --archs 90 --train-configs)
fi
( [ "$MODE" = cpu ] && export TRITON_INTERPRET=1
  run_part "2. gpu_report.py" 150 "$OUT/report.tmp" \
    "$PY" tools/analysis_tools/gpu_report.py --out "$OUT/gpu_report" "${report[@]}"
  exit $? )
rc=$?
mv "$OUT/gpu_report/report.md" "$OUT/report.md" 2>/dev/null
rm -rf "$OUT/gpu_report"
[ $rc = 0 ] || tail -20 "$OUT/report.tmp"

# Part 3: SSANet R101 through mmseg's own tools.
model_part() {
  local c=configs/ssanet_r101_cityscapes.py data=$1 size=$2 iters=$3 work=$4
  local opts rc=0
  "$PY" tools/misc/generate_data.py cityscapes "$data" --num-train 4 \
    --num-val 2 --size "$size" --seed 0 || return 1
  # shellcheck disable=SC2207  (the options are words)
  opts=($("$PY" tools/misc/short_run_options.py "$c" "$data" --size "$size" \
          --iters "$iters" --batch 2 --no-val))
  for precision in $PRECISIONS; do
    local flags=() port=$(( 29500 + RANDOM % 1000 ))
    [ "$precision" = amp ] && flags=(--amp)
    echo "### mim train $c ($precision, $iters iterations, $size)"
    mim train mmseg "$c" --gpus 1 --launcher pytorch --port "$port" \
      --work-dir "$work/$precision" "${flags[@]}" \
      --cfg-options "${opts[@]}" >"$work/$precision.log" 2>&1 || {
      tail -30 "$work/$precision.log"; return 1; }
    grep -m3 -E "Distributed training|AnyDeviceDistributedDataParallel|SyncBN|AmpOptimWrapper" \
      "$work/$precision.log" | cut -c1-160
    "$PY" tools/misc/summarize_training.py "$work/$precision" \
      --name "R101 $size $precision" $([ "$precision" = fp32 ] && echo --header) \
      --require "$REQUIRE" >>"$work/table.md" || rc=1
  done
  cat "$work/table.md"
  echo "### mim test (the fp32 checkpoint)"
  # shellcheck disable=SC2207
  opts=($("$PY" tools/misc/short_run_options.py "$c" "$data" --size "$size" --no-val))
  mim test mmseg "$c" --gpus 1 --launcher none --work-dir "$work/test" \
    --checkpoint "$work/fp32/iter_$iters.pth" --cfg-options "${opts[@]}" \
    >"$work/test.log" 2>&1 || { tail -30 "$work/test.log"; return 1; }
  grep -E "mIoU" "$work/test.log" | tail -2 | cut -c1-200
  echo "### MMSegInferencer"
  "$PY" - "$c" "$work/fp32/iter_$iters.pth" "$data" "$size" <<'EOF' || return 1
import glob, sys, time
import torch
from mmengine.config import Config
import mmseg_ssanet  # noqa: F401 (registers the model)
from mmseg.apis import MMSegInferencer
from mmseg_ssanet.utils.argument_types import cfg_options_dict, image_size
from mmseg_ssanet.utils.short_run import short_run_options
config, weights, data, size = sys.argv[1:]
h, w = image_size(size)
cfg = Config.fromfile(config)
cfg.merge_from_dict(cfg_options_dict(short_run_options(config, data, (h, w))))
device = 'cuda' if torch.cuda.is_available() else 'cpu'
inferencer = MMSegInferencer(model=cfg, weights=weights, device=device)
image = sorted(glob.glob(f'{data}/leftImg8bit/val/*/*.png'))[0]
start = time.perf_counter()
result = inferencer(image)
seconds = time.perf_counter() - start
labels = result['predictions']
assert labels.shape == (h, w), labels.shape
print(f'MMSegInferencer on {device}: {labels.shape}, classes '
      f'{sorted(set(labels.flatten().tolist()))}, {seconds:.2f} s')
EOF
  return $rc
}
if [ "$MODELS" = 1 ]; then
  work=$(mktemp -d)
  # mmengine's AmpOptimWrapper refuses to run without a GPU
  if [ "$MODE" = gpu ]; then
    msize=512x1024; miters=30; PRECISIONS="fp32 amp"; REQUIRE=falling
  else  # whether 2 steps lower the loss is chance: a finite one is asked
    msize=64x128; miters=2; PRECISIONS="fp32"; REQUIRE=finite
  fi
  export -f model_part
  export PY PRECISIONS REQUIRE
  run_part "3. R101 mim train ${PRECISIONS/ / + } ($miters its, $msize), mim test, MMSegInferencer" \
    230 "$OUT/model.log" bash -c 'model_part "$@"' model_part "$work/data" \
    "$msize" "$miters" "$work"
  rm -rf "$work"
else
  record "3. R101 through mim" "skipped: no --wheels (mmcv, mmengine, mmseg, mim not importable)" 0
fi

# Part 4: the paper's Table 2.
if [ "$MODELS" = 1 ]; then
  if [ "$MODE" = gpu ]; then
    table=(--device cuda --batch 2 --dtypes fp32 fp16 bf16 --repeats 10)
  else
    table=(--device cpu --height 64 --width 128 --dtypes fp32 bf16 --repeats 1)
  fi
  run_part "4. Table 2 (benchmark_models.py ${table[*]})" 120 "$OUT/table2.tmp" \
    "$PY" tools/analysis_tools/benchmark_models.py --no-flops \
    --out "$OUT/table2" "${table[@]}"
  mv "$OUT/table2/results.md" "$OUT/table2.md" 2>/dev/null
  rm -rf "$OUT/table2"
else
  record "4. Table 2" "skipped: no --wheels (mmseg not importable)" 0
fi

# Part 5: the Triton kernel under compute-sanitizer (its script alone in
# the rehearsal). No caching allocator: memcheck then sees each tensor.
sanitized=(env PYTORCH_NO_CUDA_MEMORY_CACHING=1)
sanitizer=""
if [ "$MODE" = gpu ]; then
  sanitizer="compute-sanitizer --tool memcheck --error-exitcode 1"
  sanitized+=($sanitizer)
fi
{ echo; echo "### part 5: ${sanitized[*]}"; } >>"$OUT/tests.log"
( [ "$MODE" = cpu ] && export TRITON_INTERPRET=1
  run_part "5. Triton kernel under ${sanitizer:-no sanitizer (rehearsal)}" 90 "$OUT/tests.log" \
    "${sanitized[@]}" "$PY" - <<'EOF'
import torch
from mmseg_ssanet.ops import sparse_nonlocal_attention as snl
device = 'cuda' if torch.cuda.is_available() else 'cpu'
g = torch.Generator().manual_seed(0)
q, k = (torch.randn(2, 8, 9, 13, generator=g) for _ in range(2))
v = torch.randn(2, 37, 9, 13, generator=g)
o = torch.randn(2, 18, 9, 13, generator=g) * 3  # some points off the map
xs = [x.to(device).requires_grad_() for x in (q, k, v, o)]
for deterministic in (False, True):
    torch.use_deterministic_algorithms(deterministic)
    out = snl(*xs, 3, backend='triton')
    grads = torch.autograd.grad(out.square().sum(), xs)
    assert all(torch.isfinite(t).all() for t in (out, *grads))
torch.use_deterministic_algorithms(False)
print(f'triton forward + backward (default, deterministic) on {device}: ok')
EOF
  exit $? )

# Part 6: the C++ kernel per ISA variant, tests + fuzz on each at once.
wait $builds
build_rc=$?
record "6a. C++ kernel builds: ${ISAS[*]} ($kernel_kind)" "$(outcome $build_rc)" \
  $(( $(date +%s) - build_start ))
if [ "$MODE" = gpu ]; then
  export SSANET_FUZZ_EXAMPLES=100
  T6=$(box $(( BUDGET - 40 - $(elapsed) )))
else
  export SSANET_FUZZ_EXAMPLES=25; T6=$(box 300)  # 3 variants on 2 cores
fi
t=$(date +%s)
if [ $build_rc != 0 ]; then
  test_rc=1
elif [ "$T6" -lt 20 ]; then
  test_rc=skip
else
  per_isa test "$T6" "$SANITIZE" "${ISAS[@]}"
  test_rc=$?
fi
for f in "$OUT"/build-*.tmp "$OUT"/test-*.tmp; do
  [ -f "$f" ] && { echo "##### $(basename "$f" .tmp)"; cat "$f"; }
done >"$OUT/kernel.log"
grep -h '^kernel check:' "$OUT"/test-*.tmp 2>/dev/null
if [ "$test_rc" = skip ]; then
  record "6b. C++ kernel tests + fuzz" "not reached (budget of $BUDGET s spent)" 0
else
  record "6b. C++ kernel tests + fuzz ($SSANET_FUZZ_EXAMPLES examples): $(cat "$OUT"/test-*.tmp 2>/dev/null | grep -c ': passed (') passed, $(cat "$OUT"/test-*.tmp 2>/dev/null | grep -c 'NOT RUN') not run on this CPU" \
    "$(outcome $test_rc)" $(( $(date +%s) - t ))
fi

# Part 7: thread scaling, on a plain build of the best variant here.
so=$(ls "build/kernels/$best"/mmseg_ssanet/ops/_C*.so 2>/dev/null)
if [ "$MODE" = gpu ]; then
  scaling=(--repeats 2)
else
  scaling=(--sizes 16x32 32x64 --batches 1 2 --threads 1 2 --channels 64 --repeats 2)
fi
if [ -n "$so" ]; then
  SSANET_CPP_EXTENSION=$so run_part "7. thread scaling ($best)" 90 "$OUT/threads.tmp" \
    "$PY" tools/analysis_tools/benchmark_threads.py --out "$OUT/threads" "${scaling[@]}"
  echo "rows measured: $(grep -c '^{' "$OUT/threads.tmp")"
  mv "$OUT/threads/threads.md" "$OUT/threads.md" 2>/dev/null
  rm -rf "$OUT/threads"
else
  record "7. thread scaling" "FAILED: no plain build of the kernel ($best) to time" 0
fi
failed=0
grep -q -e FAILED -e "TIMED OUT" "$STATUS" && failed=1
{
  echo "# Device check ($MODE mode), $(date -u '+%Y-%m-%d')"
  echo
  echo "Command: \`bash tools/device_check.sh OUT_DIR$([ "$MODE" = cpu ] && echo ' --cpu')$([ -n "$WHEELS" ] && echo ' --wheels DIR')\`; $(elapsed) s in all (budget $BUDGET s)."
  echo "Machine: cpu.txt. Details: tests.log, report.md, model.log, table2.md, kernel.log, threads.md."
  echo
  echo "| part | result | time |"
  echo "| --- | --- | --- |"
  cat "$STATUS"
  echo
  grep -h '^kernel check:' "$OUT/kernel.log" | sed 's/^/- /'
  if [ -f "$OUT/model.log" ]; then echo; grep '^|' "$OUT/model.log"; fi
} >"$OUT/summary.md"
rm -f "$OUT"/*.tmp
cat "$OUT/summary.md"
exit $failed
