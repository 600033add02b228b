#!/usr/bin/env bash
# tools/device_check.sh in its CPU mode, on the stack a bare GPU machine
# has: a throwaway venv with torch, triton 3.6.0, a current numpy (2.4 or
# later), pytest, hypothesis, ninja and the libraries that machine has
# (opencv, matplotlib, scipy, pandas, ...) -- no mmcv, mmengine or mmseg --
# and a copy of this checkout, not installed. The OpenMMLab stack comes as
# the GPU machine gets it: a folder of wheels given to --wheels (the
# pure-Python ones of ../shared/wheels/device-cp312/, which serve any
# Python 3, and mmcv built for this venv's torch, $MMCV_WHEELS/mmcv-*cp311*;
# without those the model parts are skipped, as there). `.ci/run` runs it
# (make device-rehearsal); any failed part fails it.
#
#   bash tools/rehearse_device_check.sh [OUT_DIR]   (default work_dirs/device_check_cpu)
#   MMCV_WHEELS=../shared/wheels   where the mmcv wheel and device-cp312/ are
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-work_dirs/device_check_cpu}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)
python3 -m venv "$tmp/venv"
# torch pinned: pip's configured find-links hold its CPU build (an open
# range would pull a multi-GB CUDA one).
"$tmp/venv/bin/python" -m pip install -q --disable-pip-version-check \
  torch==2.13.0 triton==3.6.0 'numpy>=2.4' pytest hypothesis ninja \
  'setuptools>=77,<81' opencv-python-headless matplotlib scipy pandas regex \
  rich markdown tqdm pyyaml requests click colorama tabulate packaging \
  pillow einops 2>&1 | grep -v "is ignored: it is neither" || true
"$tmp/venv/bin/python" -c 'import torch, triton, numpy; print("bare stack:", "torch", torch.__version__, "triton", triton.__version__, "numpy", numpy.__version__)'
if "$tmp/venv/bin/python" -c 'import mmcv' 2>/dev/null; then
  echo "the bare venv can import mmcv: not the stack of a bare GPU machine" >&2
  exit 1
fi
echo "bare venv: $(( $(date +%s) - start )) s"
mkdir "$tmp/checkout"
git ls-files -z --cached --others --exclude-standard |
  xargs -0 cp --parents -t "$tmp/checkout"
wheels=()
shared=${MMCV_WHEELS:-../shared/wheels}
mmcv=$(ls "$shared"/mmcv-2.1.0-cp311-*.whl 2>/dev/null | head -1)
if [ -n "$mmcv" ] && ls "$shared"/device-cp312/*-none-any.whl >/dev/null 2>&1; then
  mkdir "$tmp/checkout/wheels"
  cp "$mmcv" "$shared"/device-cp312/*-none-any.whl "$shared"/device-cp312/*-abi3-*.whl \
    "$tmp/checkout/wheels/"
  wheels=(--wheels wheels)
else
  echo "no mmcv wheel for this torch or no $shared/device-cp312: the model parts are skipped"
fi
PYTHON="$tmp/venv/bin/python" bash "$tmp/checkout/tools/device_check.sh" "$OUT" --cpu "${wheels[@]}"
