#!/usr/bin/env bash
# Regenerates the pictures docs/tools.md shows, from the `make demo` model
# (`make docs-pictures`, which trains it first when it is missing). The
# commands in the docs write to work_dirs/; only this script writes docs/.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
CFG=configs/demo/ssanet_mobilenetv2_cpu_synthetic-cityscapes.py
CKPT=work_dirs/demo/iter_400.pth
VAL=data/synthetic_cityscapes/leftImg8bit/val/frankfurt
IMG=$VAL/frankfurt_000001_000019_leftImg8bit.png
OUT=work_dirs/docs_pictures
[ -f "$CKPT" ] || { echo "no $CKPT: run make demo first" >&2; exit 1; }
mkdir -p "$OUT"
"$PY" tools/visualization/infer.py $CFG $CKPT $VAL --out $OUT/overlays
# four overlays, two by two, at twice their size
"$PY" - "$OUT/overlays" docs/demo_overlays.png <<'PY'
import glob, sys
from PIL import Image
tiles = [Image.open(p).convert('RGB')
         for p in sorted(glob.glob(sys.argv[1] + '/*.png'))[:4]]
w, h = tiles[0].size
sheet = Image.new('RGB', (2 * w, 2 * h))
for i, tile in enumerate(tiles):
    sheet.paste(tile, ((i % 2) * w, (i // 2) * h))
sheet.resize((4 * w, 4 * h), Image.NEAREST).save(sys.argv[2])
PY
"$PY" tools/visualization/visualize_sampling.py $CFG $CKPT $IMG \
  --points 104,40 104,200 --out docs/sampling_points_demo.png
"$PY" tools/visualization/explore_sampling.py $CFG $CKPT $IMG \
  --out $OUT/sampling_explorer.html --screenshot docs/sampling_explorer.png \
  --click 104,200
echo "written: docs/demo_overlays.png docs/sampling_points_demo.png docs/sampling_explorer.png"
