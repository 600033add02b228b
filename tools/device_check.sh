#!/usr/bin/env bash
# The first hour on a GPU machine, in one command, on a bare stack.
#
#   bash tools/device_check.sh OUT_DIR [--cpu]
#
# Needs only a python3 with torch and triton (plus pytest, hypothesis and
# a C++ compiler for part 2): no .venv, no `make env`, no install, no mmcv,
# mmengine or mmseg. Builds what it needs under build/device/ of this
# checkout. Three parts, in order of value, each time-boxed so one slow
# part cannot eat the rest (a part cut off is marked "timed out"):
#
#   1. tools/analysis_tools/gpu_report.py: the Triton kernel on the GPU
#      (values and four gradients against float64, fp16/bf16 error,
#      determinism, time and peak memory beside dense attention and SDPA,
#      the resource table for this GPU's architecture);
#   2. the fused C++ kernel built against this torch, one build per ISA
#      variant (tools/check_kernel.sh, PHASE=build while part 1 runs on the
#      GPU, then PHASE=test), the operator's C++ tests and the differential
#      fuzz on every variant this CPU executes (AVX-512 where
#      /proc/cpuinfo has its flags), under ASan + UBSan where gcc's ASan
#      runtime is there, else plain builds (said in the summary);
#   3. tools/analysis_tools/benchmark_threads.py: the C++ kernel's thread
#      scaling against its 1x1-conv floor (1-16 threads).
#
# --cpu (or no CUDA device): the rehearsal `.ci/run` makes on a bare venv:
# Triton through its interpreter at tiny sizes, plain builds of the
# variants this CPU runs, a short fuzz, a 1-2 thread table.
#
# Writes at most 7 files: OUT_DIR/summary.md, cpu.txt, kernel.log,
# gpu_report/report.{md,json}, threads/threads.{md,json}. Exit status 1 if
# any part failed or timed out.
#
#   PYTHON=python3   the interpreter (default python3)
set -uo pipefail
cd "$(dirname "$0")/.."
usage="usage: bash tools/device_check.sh OUT_DIR [--cpu]"
case "$#:${2:---cpu}" in 1:--cpu|2:--cpu) ;; *) echo "$usage" >&2; exit 2 ;; esac
OUT=$1
MODE=auto
[ $# = 2 ] && MODE=cpu
PY=${PYTHON:-python3}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
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
elapsed() { echo $(( $(date +%s) - START )); }

# The machine: CPU model, flags, and what the stack is.
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "mode: $MODE"
  grep -m1 '^model name' /proc/cpuinfo || true
  echo "cpus: $(nproc)"
  grep -m1 '^flags' /proc/cpuinfo || true
  "$PY" -c 'import sys, numpy, torch, triton; print("python", sys.version.split()[0], "| numpy", numpy.__version__, "| torch", torch.__version__, "| triton", triton.__version__, "| cuda", torch.version.cuda, "|", torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU")'
  "$PY" -c 'import mmcv' 2>/dev/null && echo "mmcv: importable" || echo "mmcv: not importable"
  gcc --version | head -1 || echo "gcc: missing"
} >"$OUT/cpu.txt" 2>&1
cat "$OUT/cpu.txt"

status=()  # one line per part
record() { status+=("| $1 | $2 | $3 s |"); echo "== part $1: $2 ($3 s)"; }
outcome() {  # exit code of `timeout` -> a word
  case "$1" in 0) echo passed ;; 124|137) echo "TIMED OUT" ;; *) echo "FAILED (exit $1)" ;; esac
}

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

# Part 2's builds start now, beside part 1 (which keeps the GPU busy): one
# per ISA, and a plain one of the best variant for part 3's timings.
build_start=$(date +%s)
(
  rc=0
  [ "$SANITIZE" = 1 ] && [ -n "$best" ] && { per_isa build 400 0 "$best" & plain=$!; }
  per_isa build 400 "$SANITIZE" "${ISAS[@]}" || rc=$?
  [ -n "${plain:-}" ] && { wait "$plain" || rc=$?; }
  exit $rc
) &
builds=$!

# Part 1: the Triton kernel.
if [ "$MODE" = gpu ]; then
  report=(--repeats 5)
  T1=200
else
  report=(--device cpu --sizes 6x8 --batches 1 --dtypes fp32 --cq 4 --c 6
          --k 9 --check-size 5x6 --repeats 1 --archs 90)
  T1=150
fi
t=$(date +%s)
( [ "$MODE" = cpu ] && export TRITON_INTERPRET=1
  exec timeout --kill-after=10 $T1 "$PY" tools/analysis_tools/gpu_report.py \
    --out "$OUT/gpu_report" "${report[@]}" ) >"$OUT/report.tmp" 2>&1
rc=$?
tail -40 "$OUT/report.tmp"
record "1. gpu_report.py" "$(outcome $rc)" $(( $(date +%s) - t ))
[ $rc = 0 ] || status+=("| (its last line) | $(grep . "$OUT/report.tmp" | tail -1 | tr '|' '/') | |")

# Part 2: the C++ kernel per ISA variant, tests + fuzz on each at once.
wait $builds
build_rc=$?
record "2a. C++ kernel builds: ${ISAS[*]} ($kernel_kind)" "$(outcome $build_rc)" \
  $(( $(date +%s) - build_start ))
if [ "$MODE" = gpu ]; then
  export SSANET_FUZZ_EXAMPLES=100
  T2=$(( 400 - $(elapsed) )); [ $T2 -lt 90 ] && T2=90
else
  export SSANET_FUZZ_EXAMPLES=25; T2=150
fi
t=$(date +%s)
if [ $build_rc = 0 ]; then
  per_isa test $T2 "$SANITIZE" "${ISAS[@]}"
  test_rc=$?
else
  test_rc=1
fi
for f in "$OUT"/build-*.tmp "$OUT"/test-*.tmp; do
  [ -f "$f" ] && { echo "##### $(basename "$f" .tmp)"; cat "$f"; }
done >"$OUT/kernel.log"
grep -h '^kernel check:' "$OUT"/test-*.tmp 2>/dev/null
record "2b. C++ kernel tests + fuzz ($SSANET_FUZZ_EXAMPLES examples): $(cat "$OUT"/test-*.tmp 2>/dev/null | grep -c ': passed (') passed, $(cat "$OUT"/test-*.tmp 2>/dev/null | grep -c 'NOT RUN') not run on this CPU" \
  "$(outcome $test_rc)" $(( $(date +%s) - t ))

# Part 3: thread scaling, on a plain build of the best variant here.
so=$(ls "build/kernels/$best"/mmseg_ssanet/ops/_C*.so 2>/dev/null)
if [ "$MODE" = gpu ]; then
  scaling=(--repeats 2)
  T3=$(( 470 - $(elapsed) )); [ $T3 -lt 60 ] && T3=60
else
  scaling=(--sizes 16x32 32x64 --batches 1 2 --threads 1 2 --channels 64 --repeats 2)
  T3=90
fi
t=$(date +%s)
if [ -n "$so" ]; then
  SSANET_CPP_EXTENSION=$so timeout --kill-after=10 $T3 "$PY" \
    tools/analysis_tools/benchmark_threads.py --out "$OUT/threads" "${scaling[@]}" \
    >"$OUT/threads.tmp" 2>&1
  rc=$?
  tail -25 "$OUT/threads.tmp"
else
  rc=1; echo "no plain build of the kernel ($best) to time" >"$OUT/threads.tmp"
fi
record "3. thread scaling ($best, limit $T3 s; rows measured: $(grep -c '^{' "$OUT/threads.tmp"))" \
  "$(outcome $rc)" $(( $(date +%s) - t ))
[ $rc = 0 ] || status+=("| (its last line) | $(grep . "$OUT/threads.tmp" | tail -1 | tr '|' '/') | |")
rm -f "$OUT"/*.tmp

failed=0
for line in "${status[@]}"; do
  [[ "$line" == *FAILED* || "$line" == *"TIMED OUT"* ]] && failed=1
done
{
  echo "# Device check ($MODE mode), $(date -u '+%Y-%m-%d')"
  echo
  echo "Command: \`bash tools/device_check.sh OUT_DIR$([ "$MODE" = cpu ] && echo ' --cpu')\`; $(elapsed) s in all."
  echo "Machine: cpu.txt. Details: gpu_report/report.md, kernel.log, threads/threads.md."
  echo
  echo "| part | result | time |"
  echo "| --- | --- | --- |"
  printf '%s\n' "${status[@]}"
  echo
  grep -h '^kernel check:' "$OUT/kernel.log" | sed 's/^/- /'
} >"$OUT/summary.md"
cat "$OUT/summary.md"
exit $failed
