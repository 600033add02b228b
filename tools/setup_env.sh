#!/usr/bin/env bash
# Create or complete the project's virtual environment (.venv by default).
#
#   MMCV_WHEELS=DIR  a folder holding an mmcv 2.1.0 wheel built for torch
#                    2.13.0 and this Python (CI: ../shared/wheels). Without
#                    a fitting wheel there, mmcv is built from PyPI's source
#                    with the fixes newer Pythons need
#                    (tools/misc/build_mmcv.py; 10-30 minutes on 2 cores),
#                    and the wheel kept in MMCV_BUILD_DIR for reuse.
#   VENV=DIR         where the environment lives (default .venv)
#   PYTHON=python3   the interpreter to create it with (Python 3.10-3.13)
#
# Idempotent: pip skips what is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
MMCV_BUILD_DIR=${MMCV_BUILD_DIR:-work_dirs/mmcv_wheels}

# The interpreter first, before anything is downloaded: torch 2.13.0 (the
# pinned build) has wheels for Python 3.10 and newer only.
INTERPRETER=$PYTHON
[ -x "$VENV/bin/python" ] && INTERPRETER=$VENV/bin/python
if ! command -v "$INTERPRETER" >/dev/null; then
  echo "make env: no interpreter '$INTERPRETER' (PYTHON=$PYTHON); install Python 3.11, e.g. 'pyenv install 3.11' or 'uv python install 3.11', and run 'make env PYTHON=python3.11'" >&2
  exit 2
fi
"$INTERPRETER" - "$INTERPRETER" "$VENV" <<'PY' || exit 2
import sys
interpreter, venv = sys.argv[1:]
found = '.'.join(map(str, sys.version_info[:3]))
get = ("Install one with 'pyenv install 3.11' or 'uv python install 3.11', "
       "then run 'make env PYTHON=python3.11'")
if sys.version_info < (3, 10):
    made = (f' {venv} was made with it: remove it first.'
            if interpreter.startswith(venv) else '')
    sys.exit(f'make env: Python {found} ({interpreter}) cannot install the '
             f'pinned stack: torch 2.13.0 has wheels for Python 3.10 and '
             f'newer. Tested: 3.11, 3.12 and 3.13.{made} {get}. (The SNL '
             f'operator alone runs on Python 3.9 with torch 2.1: '
             f'docs/installation.md.)')
if sys.version_info >= (3, 14):
    print(f'make env: Python {found} is newer than the tested 3.11-3.13; '
          f'if a build fails: {get}.', file=sys.stderr)
PY
FIND_LINKS=()
if [ -n "${MMCV_WHEELS:-}" ]; then
  [ -d "$MMCV_WHEELS" ] || { echo "MMCV_WHEELS=$MMCV_WHEELS is not a folder" >&2; exit 2; }
  # --find-links on the command line adds to pip's configured find-links;
  # PIP_FIND_LINKS would replace them (and lose the CPU torch on this disk).
  FIND_LINKS=(--find-links "$(cd "$MMCV_WHEELS" && pwd)")
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check -q)

# setuptools<81 keeps pkg_resources (mmcv's setup.py, mmengine's `mmseg::`
# config lookup and mim import it); >=77 builds mmcv against torch 2.13.
"${PIP[@]}" 'setuptools>=77,<81' wheel ninja
# torch first and exact: another spec may pull a multi-GB CUDA build.
"${PIP[@]}" "${FIND_LINKS[@]}" torch==2.13.0
# mmcv 2.1.0 with its ops: a fitting prebuilt wheel, else one built here
# from its source (kept per torch build: a new environment reuses it).
TORCH=$("$VENV/bin/python" -c 'import torch; print(torch.__version__)')
MMCV_BUILT="$MMCV_BUILD_DIR/torch-$TORCH"
mkdir -p "$MMCV_BUILT"
MMCV_FROM=("${FIND_LINKS[@]}" --find-links "$MMCV_BUILT" --only-binary mmcv)
if ! "${PIP[@]}" --no-deps "${MMCV_FROM[@]}" mmcv==2.1.0 >/dev/null 2>&1; then
  echo "make env: no mmcv 2.1.0 wheel for this Python and torch $TORCH; building it from source (10-30 minutes)"
  "$VENV/bin/python" tools/misc/build_mmcv.py --out "$MMCV_BUILT"
  "${PIP[@]}" --no-deps "${MMCV_FROM[@]}" mmcv==2.1.0
fi
"${PIP[@]}" "${FIND_LINKS[@]}" -r requirements/runtime.txt
# openmim without openxlab/opendatalab, which would pin setuptools~=60.2.
"${PIP[@]}" --no-deps openmim==0.3.9
# The test requirements pin triton for the CPU build of torch, which
# declares none; a CUDA build of torch (the index's, e.g. for Python 3.12
# and 3.13) pins the triton it was built with, and that one stays.
TESTS=requirements/tests.txt
if "$VENV/bin/python" - <<'PY'
import importlib.metadata as md
import sys
sys.exit(0 if any(r.startswith('triton') for r in md.requires('torch') or ())
         else 1)
PY
then
  grep -v '^triton' requirements/tests.txt > "$VENV/tests-with-torchs-triton.txt"
  TESTS=$VENV/tests-with-torchs-triton.txt
fi
"${PIP[@]}" -r requirements/mim.txt -r "$TESTS" -r requirements/lint.txt
# Editable, without build isolation: setup.py compiles the fused CPU kernel
# of the SNL operator against the torch installed above.
"${PIP[@]}" --no-deps --no-build-isolation -e .

"$VENV/bin/python" - <<'PY'
import pkg_resources, setuptools  # noqa: F401  (mmengine and mim need it)
import torch, mmcv, mmengine, mmseg
import mmseg_ssanet  # checks mmcv's compiled ops
from mmseg_ssanet.ops.backends import cpp
reason = cpp.unavailable(torch.device('cpu'))
if reason:
    raise SystemExit(f'mmseg_ssanet: {reason}')
print(f'environment ready: torch {torch.__version__}, mmcv {mmcv.__version__}, '
      f'mmengine {mmengine.__version__}, mmseg {mmseg.__version__}, '
      f'setuptools {setuptools.__version__}, fused SNL CPU kernel built')
PY
