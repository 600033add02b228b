#!/usr/bin/env bash
# Memory-safety and ISA check of the fused C++ kernel (`make kernel-check`).
#
# For each vector variant (default: all three that the installed build
# carries, picked at load time), build the kernel for that ISA alone, with
# AddressSanitizer + UndefinedBehaviorSanitizer and libstdc++ assertions
# (setup.py's SSANET_ISA / SSANET_SANITIZE switches), into
# build/kernels/<isa>-sanitize/, and run the operator tests and the
# differential fuzz on it: python with the ASan runtime preloaded, the
# build loaded through SSANET_CPP_EXTENSION. Any sanitizer report aborts
# the process that made it (the fuzz's worker or pytest), which fails the
# run. A variant this CPU cannot execute is compiled and reported as not
# run; under CI=true that is said loudly but does not fail (the hardware
# decides, not the code).
#
#   tools/check_kernel.sh [ISA ...]      ISA: x86-64-v4 x86-64-v3 x86-64
#   SANITIZE=0               plain single-ISA builds (no sanitizers)
#   SSANET_FUZZ_EXAMPLES=N   fuzz examples per backend (default 150 here)
#   PHASE=build | test       only build, or only test what an earlier
#                            PHASE=build left (tools/device_check.sh runs
#                            the builds while the GPU is busy); default both
#   PYTHON=.venv/bin/python
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
SANITIZE=${SANITIZE:-1}
PHASE=${PHASE:-all}
case "$PHASE" in build|test|all) ;; *) echo "PHASE=$PHASE: build, test or all" >&2; exit 2 ;; esac
export SSANET_FUZZ_EXAMPLES=${SSANET_FUZZ_EXAMPLES:-150}
ISAS=("$@")
[ ${#ISAS[@]} -gt 0 ] || ISAS=(x86-64-v4 x86-64-v3 x86-64)
# The C++ backend's tests: the Triton and pure-PyTorch ones run no code of
# ours natively, and take most of the time under the sanitizers.
SELECT='not triton and not csr and not reference-'
# Not under ASan: a Python exception raised inside a backward (the double
# backward refusal) crosses torch's autograd engine as a C++ exception, and
# ASan's __cxa_throw interceptor, preloaded into a python it did not
# instrument, fails its own CHECK there (seen with a plain
# autograd.Function that raises: no code of ours). make test runs it.
[ "${SANITIZE:-1}" = 1 ] && SELECT="$SELECT and not second_derivatives"

# CPU flags each level needs (x86-64 psABI), as /proc/cpuinfo names them.
needs() {
  case "$1" in
    x86-64-v4) echo avx512f avx512bw avx512cd avx512dq avx512vl avx2 fma ;;
    x86-64-v3) echo avx2 fma bmi1 bmi2 f16c movbe abm xsave ;;
    x86-64) echo ;;
    *) echo "unknown ISA $1 (x86-64-v4, x86-64-v3 or x86-64)" >&2; exit 2 ;;
  esac
}

missing_flags() {
  local flags missing=()
  flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
  for f in $(needs "$1"); do
    [[ "$flags" == *" $f "* ]] || missing+=("$f")
  done
  echo "${missing[*]:-}"
}

# `check_kernel.sh --runs ISA`: whether this CPU executes that variant.
if [ "${1:-}" = --runs ]; then
  [ $# = 2 ] || { echo "usage: check_kernel.sh --runs ISA" >&2; exit 2; }
  needs "$2" >/dev/null
  [ -z "$(missing_flags "$2")" ]
  exit
fi

# Without mmcv (a bare GPU machine) the one comparison with mmcv's
# deform_conv2d cannot run; every other test needs torch alone.
if [ "$PHASE" != build ] && ! "$PY" -c 'import mmcv.ops' >/dev/null 2>&1; then
  echo "== mmcv's ops not importable: test_offset_layout_is_mmcv_deform_conv not run"
  SELECT="$SELECT and not mmcv_deform_conv"
fi

preload=""
sanitizer_env=()
suffix=""
if [ "$SANITIZE" = 1 ]; then
  preload=$(gcc -print-file-name=libasan.so)
  [ -f "$preload" ] || { echo "no ASan runtime (gcc's libasan.so)" >&2; exit 2; }
  # detect_leaks=0: the interpreter keeps memory until exit by design.
  sanitizer_env=(LD_PRELOAD="$preload"
                 ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:detect_stack_use_after_return=1
                 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1)
  suffix="-sanitize"
fi

summary=()
for isa in "${ISAS[@]}"; do
  needs "$isa" >/dev/null
  out="build/kernels/$isa$suffix"
  mkdir -p "$out"
  start=$(date +%s)
  if [ "$PHASE" != test ]; then
    echo "== $isa$suffix: building into $out"
    SSANET_ISA="$isa" SSANET_SANITIZE="$SANITIZE" "$PY" setup.py -q build_ext \
      --build-lib "$out" --build-temp "$out/tmp" >"$out.log" 2>&1 ||
      { cat "$out.log"; echo "build of $isa failed" >&2; exit 1; }
  fi
  so=$(ls "$out"/mmseg_ssanet/ops/_C*.so) ||
    { echo "no build of $isa$suffix in $out (run PHASE=build first)" >&2; exit 1; }
  if [ "$PHASE" = build ]; then
    summary+=("$isa$suffix: built ($(( $(date +%s) - start )) s)")
    continue
  fi
  missing=$(missing_flags "$isa")
  if [ -n "$missing" ]; then
    echo "== $isa$suffix: compiled, NOT RUN: this CPU lacks $missing"
    summary+=("$isa$suffix: compiled, not run (CPU lacks $missing)")
    continue
  fi
  echo "== $isa$suffix: operator tests and fuzz ($SSANET_FUZZ_EXAMPLES examples)"
  env "${sanitizer_env[@]}" SSANET_CPP_EXTENSION="$so" \
    SSANET_EXPECT_BUILD="$isa$suffix" \
    "$PY" -m pytest tests/test_ops.py tests/test_backend_cpp.py tests/test_ops_fuzz.py \
    -k "$SELECT" \
    -q -p no:cacheprovider
  took="$(( $(date +%s) - start )) s"
  [ "$PHASE" = all ] && took="$took with the build"
  summary+=("$isa$suffix: passed ($took)")
done
printf 'kernel check: %s\n' "${summary[@]}"
