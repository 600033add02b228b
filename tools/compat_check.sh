#!/usr/bin/env bash
# The plugin on the stacks its users have, each in a throwaway venv with a
# copy of this checkout (not a git checkout, as an sdist). `.ci/run` runs
# it (make compat-check); any failed stack fails it.
#
#   canonical  Python 3.11, torch 2.1.2 (PyPI's build: CUDA 12.1, runs on
#              CPU) with its triton 2.1.0, numpy 1.x, mmcv 2.1.0 through
#              `mim install mmcv==2.1.0`, mmengine 0.10.7, mmseg 1.2.2,
#              installed command for command as docs/installation.md says;
#              then the operator contract, the model and checkpoint tests,
#              the demo config through `mim train` and `mim test`, and
#              last, with numpy 2 installed over it, the import naming
#              the numpy to install;
#   py39       Python 3.9, torch 2.1.2: the operator alone, its contract;
#   newest     Python 3.11, the newest torch pip installs here (2.14.1
#              under this machine's cap) with its triton: the operator
#              alone, its contract, the Triton kernels under the
#              interpreter included;
#   py313      Python 3.13, installed by `make env` (the pinned stack:
#              torch 2.13.0, mmcv 2.1.0, mmseg 1.2.2): the operator
#              contract, the mmcv source fixes, and the demo config
#              through `mim train` and `mim test`.
#
#   bash tools/compat_check.sh [OUT_DIR]   (default work_dirs/compat_check)
#
#   STACKS="canonical py39 newest py313"   which to run
#   MMCV21_WHEELS=DIR  mmcv 2.1.0 built for torch 2.1.2 and Python 3.11
#       (default ../shared/wheels/torch2.1-cp311, when there), served to
#       `mim install` laid out as OpenMMLab's download site (MMCV_BASE_URL);
#       without it `mim install` builds mmcv from source, about 40 minutes.
#   PY313_WHEELS=DIR  mmcv 2.1.0 built for torch 2.13.0 and Python 3.13
#       (default ../shared/wheels/py313, when there), passed to `make env`
#       as MMCV_WHEELS; without it `make env` builds mmcv from its fixed
#       source (tools/misc/build_mmcv.py), about 27 minutes.
#
# Writes OUT_DIR/summary.md (stack, versions, what ran, result, seconds)
# and one log per stack.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-work_dirs/compat_check}
STACKS=${STACKS:-canonical py39 newest py313}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
if [ -z "${MMCV21_WHEELS:-}" ] && [ -d ../shared/wheels/torch2.1-cp311 ]; then
  MMCV21_WHEELS=../shared/wheels/torch2.1-cp311
fi
if [ -n "${MMCV21_WHEELS:-}" ]; then
  MMCV21_WHEELS=$(cd "$MMCV21_WHEELS" && pwd) || exit 2
fi
if [ -z "${PY313_WHEELS:-}" ] && [ -d ../shared/wheels/py313 ]; then
  PY313_WHEELS=../shared/wheels/py313
fi
if [ -n "${PY313_WHEELS:-}" ]; then
  PY313_WHEELS=$(cd "$PY313_WHEELS" && pwd) || exit 2
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
START=$(date +%s)
export PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
unset SSANET_CPP_EXTENSION TRITON_INTERPRET
# Two stacks test at a time on two cores: one thread each.
export OMP_NUM_THREADS=1

python_of() {  # the interpreter for a Python version, from pyenv or PATH
  local v=$1
  for p in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$v".*/bin/python"$v" \
      "$(command -v "python$v" || true)"; do
    [ -x "$p" ] && { echo "$p"; return; }
  done
  return 1
}

checkout() {  # a copy of the working tree's files, as in an sdist
  mkdir -p "$1"
  git ls-files -z --cached --others --exclude-standard |
    xargs -0 cp --parents -t "$1"
}

quiet() { grep --line-buffered -v "is ignored: it is neither" || true; }

# The operator's contract: every backend against the equations, float64
# gradients, edge cases, both registration paths, the sampling geometry.
OPERATOR_TESTS=(tests/test_ops.py tests/test_features.py
  tests/test_backend_cpp.py tests/test_backend_reference.py
  tests/test_backend_triton.py tests/test_sampling_geometry.py)
# mmcv's deformable conv (the cross-check) and mmengine's checkpoints are
# not on a stack with torch alone
OPERATOR_ONLY=(-k 'not mmcv_deform_conv and not load_trusted')
MODEL_TESTS=(tests/test_snl_block.py tests/test_snl_head.py
  tests/test_shims.py tests/test_checkpoint_allowlist.py
  tests/test_publish.py tests/test_bad_setup.py tests/test_flops.py
  tests/test_layers.py tests/test_tools.py::test_onnx_export_matches_pytorch)

# -- the stacks -------------------------------------------------------------

install_canonical() {  # $1: venv, $2: checkout
  local python
  python=$(python_of 3.11) || { echo "no Python 3.11"; return 1; }
  "$python" -m venv "$1" && source "$1/bin/activate" && cd "$2" || return 1
  if [ -n "${MMCV21_WHEELS:-}" ]; then
    # OpenMMLab's site as mim reads it: mmcv/dist/<cuda>/torch<x.y.0>/
    local site="$tmp/openmmlab" dist="$tmp/openmmlab/mmcv/dist/cu121/torch2.1.0"
    mkdir -p "$dist" && cp "$MMCV21_WHEELS"/mmcv-2.1.0-*.whl "$dist/" || return 1
    (cd "$dist" && for w in *.whl; do echo "<a href=\"$w\">$w</a>"; done > index.html)
    export MMCV_BASE_URL="file://$site"
  fi
  # docs/installation.md, "GPU install on the stack mmseg users have":
  pip install 'setuptools>=77,<81' wheel ninja
  pip install -r requirements/torch2.1.txt -r requirements/mim.txt
  pip install --no-deps openmim==0.3.9
  if [ -n "${MMCV21_WHEELS:-}" ]; then
    mim install mmcv==2.1.0
  else  # no prebuilt wheel reachable here: the source build (~40 min)
    MMCV_WITH_OPS=1 pip install --no-build-isolation mmcv==2.1.0
  fi
  pip install --no-build-isolation -e .
  # what the tests need besides
  pip install pytest hypothesis onnx onnxruntime 'numpy<2'
}

test_canonical() {  # in the checkout, venv active
  python -c 'import mmseg_ssanet, mmcv, mmseg, torch; print("imported: torch", torch.__version__, "mmcv", mmcv.__version__, "mmseg", mmseg.__version__)' &&
    python -m pytest -q -p no:cacheprovider "${OPERATOR_TESTS[@]}" \
      "${MODEL_TESTS[@]}" &&
    demo &&
    numpy2_is_named
}

numpy2_is_named() {  # last: numpy 2 over the stack, then numpy 1 back
  # torch 2.1 beside numpy 2 (one `pip install` of a package that wants it):
  # the import names the numpy to install, before any training
  pip install -q 'numpy>=2' || return 1
  if python -c 'import mmseg_ssanet' 2> numpy2.err; then
    echo "import mmseg_ssanet passed beside numpy 2"; return 1
  fi
  grep 'cannot use the installed numpy' numpy2.err &&
    grep -q 'pip install "numpy<2"' numpy2.err &&
    pip install -q 'numpy<2'  # the stack as it was, for the summary
}

demo() {  # the demo config through mim: 10 iterations, then mim test
  local data=work_dirs/compat_data work=work_dirs/compat_demo
  local config=configs/demo/ssanet_mobilenetv2_cpu_synthetic-cityscapes.py
  python tools/misc/generate_data.py cityscapes "$data" --num-train 8 \
    --num-val 4 --size 64x128 --seed 0 || return 1
  # shellcheck disable=SC2046  (the options are words)
  mim train mmseg "$config" --gpus 0 --work-dir "$work" --cfg-options \
    $(python tools/misc/short_run_options.py "$config" "$data" --size 64x128 \
      --iters 10 --batch 2 --no-val) || return 1
  grep -q "Iter(train) \[10/10\].* loss: [0-9]" "$work"/*/*.log ||
    { echo "no finite loss at iteration 10"; return 1; }
  mim test mmseg "$config" --gpus 0 --work-dir "$work" \
    --checkpoint "$work/iter_10.pth" --cfg-options \
    $(python tools/misc/short_run_options.py "$config" "$data" --size 64x128 \
      --no-val) 2>&1 | tee "$work/test.log" | tail -3
  grep -q "mIoU:" "$work/test.log" || { echo "mim test printed no mIoU"; return 1; }
}

install_operator() {  # $1: venv, $2: checkout, $3: Python, $4...: torch spec
  local venv=$1 src=$2 python
  python=$(python_of "$3") || { echo "no Python $3"; return 1; }
  shift 3
  "$python" -m venv "$venv" && source "$venv/bin/activate" && cd "$src" ||
    return 1
  # docs/installation.md, "The operator alone":
  pip install 'setuptools>=77,<81' wheel ninja "$@"
  pip install --no-deps --no-build-isolation -e .
  pip install pytest hypothesis
}

install_py313() {  # $1: venv, $2: checkout; the README's `make env`
  local python
  python=$(python_of 3.13) || { echo "no Python 3.13"; return 1; }
  cd "$2" &&
    make env PYTHON="$python" VENV="$1" MMCV_WHEELS="${PY313_WHEELS:-}"
}

test_py313() {  # in the checkout, venv active
  python -c 'import mmseg_ssanet, mmcv, mmseg, torch, sys; print("imported: Python", sys.version.split()[0], "torch", torch.__version__, "mmcv", mmcv.__version__, "mmseg", mmseg.__version__)' &&
    python -m pytest -q -p no:cacheprovider "${OPERATOR_TESTS[@]}" \
      tests/test_build_mmcv.py tests/test_triton_resources.py &&
    demo
}

test_operator() {
  python -c 'import torch, mmseg_ssanet.ops; import triton; print("imported: torch", torch.__version__, "triton", triton.__version__)' &&
    python -m pytest -q -p no:cacheprovider "${OPERATOR_TESTS[@]}" \
      "${OPERATOR_ONLY[@]}"
}

# -- running them -----------------------------------------------------------

install_stack() {  # $1: name; logs to OUT/$1.log, marks success
  local name=$1 started
  started=$(date +%s)
  local venv="$tmp/venv-$name" src="$tmp/src-$name"
  checkout "$src"
  (
    set -o pipefail
    (
      set -e  # each install command must succeed
      case $name in
        canonical) install_canonical "$venv" "$src" ;;
        py39) install_operator "$venv" "$src" 3.9 torch==2.1.2 'numpy<2' ;;
        newest) install_operator "$venv" "$src" 3.11 --upgrade torch numpy ;;
        py313) install_py313 "$venv" "$src" ;;
      esac
    ) 2>&1 | quiet
  ) > "$OUT/$name.log" 2>&1 && touch "$tmp/$name.installed"
  echo $(( $(date +%s) - started )) > "$tmp/$name.install_s"
}

test_stack() {  # $1: name; tests an installed stack, adds its summary row
  local name=$1 started status=1
  started=$(date +%s)
  local venv="$tmp/venv-$name" src="$tmp/src-$name"
  if [ -e "$tmp/$name.installed" ]; then
    (
      source "$venv/bin/activate" && cd "$src" &&
        case $name in
          canonical) test_canonical ;;
          py313) test_py313 ;;
          *) test_operator ;;
        esac
    ) >> "$OUT/$name.log" 2>&1
    status=$?
  else
    echo "install failed" >> "$OUT/$name.log"
  fi
  local versions tests
  versions=$("$venv/bin/python" - 2>/dev/null <<'PY'
import sys
import importlib.metadata as md
def v(p):
    try:
        return md.version(p)
    except md.PackageNotFoundError:
        return '-'
print(f"Python {sys.version.split()[0]}, torch {v('torch')}, triton "
      f"{v('triton')}, numpy {v('numpy')}, mmcv {v('mmcv')}, mmengine "
      f"{v('mmengine')}, mmseg {v('mmsegmentation')}")
PY
  )
  tests=$(grep -E '^[0-9]+ (passed|failed)|^=+ .*(passed|failed)' \
    "$OUT/$name.log" | tail -1 | tr -d '=' | xargs)
  case $name in canonical|py313) ;; *) false ;; esac &&
    grep -q "mIoU:" "$OUT/$name.log" &&
    tests="$tests; demo: mim train 10 its + mim test"
  echo "| $name | ${versions:-?} | ${tests:-no tests ran} | $([ $status = 0 ] && echo ok || echo FAILED) | install $(cat "$tmp/$name.install_s") s, tests $(( $(date +%s) - started )) s |" \
    >> "$OUT/rows.md"
  return $status
}

for name in $STACKS; do
  case $name in canonical|py39|newest|py313) ;; *) echo "unknown stack $name" >&2; exit 2 ;; esac
done
: > "$OUT/rows.md"
# Installs at once (downloads and disk), then the tests in two lanes on
# the two cores, about equally long: canonical and newest in one, py313
# and py39 in the other.
for name in $STACKS; do install_stack "$name" & done
wait
echo "installed: $(( $(date +%s) - START )) s"
lane1=() lane2=()
for name in $STACKS; do
  case $name in
    canonical|newest) lane1+=("$name") ;;
    *) lane2+=("$name") ;;
  esac
done
run_lane() { local s=0; for n in "$@"; do test_stack "$n" || s=1; done; return $s; }
pids=()
[ ${#lane1[@]} -gt 0 ] && { run_lane "${lane1[@]}" & pids+=($!); }
[ ${#lane2[@]} -gt 0 ] && { run_lane "${lane2[@]}" & pids+=($!); }
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
{
  echo "# compat check, $(date -u '+%Y-%m-%d %H:%M UTC'), $(( $(date +%s) - START )) s"
  echo
  echo "| stack | versions | tests | result | time |"
  echo "| --- | --- | --- | --- | --- |"
  cat "$OUT/rows.md"
} > "$OUT/summary.md"
rm -f "$OUT/rows.md"
cat "$OUT/summary.md"
if [ $failed != 0 ]; then
  for name in $STACKS; do
    grep -q "| $name | .* | ok |" "$OUT/summary.md" ||
      { echo "== $name: last lines of $OUT/$name.log"; tail -40 "$OUT/$name.log"; }
  done
fi
exit $failed
