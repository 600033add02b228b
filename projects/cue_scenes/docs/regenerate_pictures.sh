#!/usr/bin/env bash
# Regenerates the pictures projects/cue_scenes/README.md shows
# (`make cue-pictures`). The scenes are drawn at once; the attention
# pictures need the README's runs (work_dirs/investigate/cues_48-80,
# work_dirs/investigate/iters_3000, work_dirs/ablation_miniature): one
# whose run is missing is said and skipped. The README's commands write
# to work_dirs/; only this script writes projects/cue_scenes/docs/.
set -euo pipefail
cd "$(dirname "$0")/../../.."
PY=${PYTHON:-.venv/bin/python}
DOCS=projects/cue_scenes/docs
TOOLS=projects/cue_scenes/tools
CFG=configs/ablation/mobilenetv2_snl-k81_cityscapes.py
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PY" $TOOLS/generate_cue_data.py cityscapes "$tmp/cues" \
  --num-train 512 --num-val 32 --cue-distance 64 112 --preview $DOCS/cue_scenes.png
attention() {  # run folder, checkpoint below it, picture
  local run=$1 ckpt=$1/$2 val=$1/data/cityscapes
  local name=frankfurt/frankfurt_000000_000019
  if [ ! -f "$ckpt" ]; then
    echo "skipped $DOCS/$3: no $ckpt (the README says which run makes it)"
    return
  fi
  "$PY" $TOOLS/visualize_cue_attention.py $CFG "$ckpt" \
    "$val/leftImg8bit/val/${name}_leftImg8bit.png" \
    "$val/gtFine/val/${name}_gtFine_labelTrainIds.png" \
    --cfg-options "test_pipeline.1.scale=(256,128)" --out "$DOCS/$3"
}
attention work_dirs/investigate/cues_48-80 snl_k_81/seed0/iter_1000.pth sampling_cues_48-80.png
attention work_dirs/investigate/iters_3000 snl_k_81/seed0/iter_3000.pth sampling_cues_64-112_3000it.png
attention work_dirs/ablation_miniature snl_k_81/seed2/iter_1000.pth sampling_cues_64-112.png
