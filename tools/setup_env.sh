#!/usr/bin/env bash
# Create or complete the project's virtual environment (.venv by default).
#
#   MMCV_WHEELS=DIR  a folder holding an mmcv 2.1.0 wheel built for torch
#                    2.13.0 (CI: ../shared/wheels). Without it mmcv is built
#                    from PyPI's source: about 9 minutes on 2 cores.
#   VENV=DIR         where the environment lives (default .venv)
#   PYTHON=python3   the interpreter to create it with
#
# Idempotent: pip skips what is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
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
# mmcv's source build imports torch, hence --no-build-isolation.
"${PIP[@]}" "${FIND_LINKS[@]}" --no-build-isolation -r requirements/runtime.txt
# openmim without openxlab/opendatalab, which would pin setuptools~=60.2.
"${PIP[@]}" --no-deps openmim==0.3.9
"${PIP[@]}" -r requirements/mim.txt -r requirements/tests.txt
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
