#!/usr/bin/env bash
# GPU check for SAM fine-tuning, on a machine with a CUDA GPU and no internet:
# synth -> convert -> sam train (vit_b from random initialisation, no checkpoint needed)
# for a bounded number of steps; prints embedding-cache time, step time and GPU memory, then predicts val and
# test with ground-truth box prompts and ends with the one evaluation's table. Target: < 8 minutes.
# Usage: bash tools/gpu_check_sam.sh [WORKDIR] [STEPS]
# PRESET, MODEL_TYPE and DEVICE override bottle / vit_b / cuda (the test suite smoke-runs it on CPU with tiny).
set -euo pipefail
WORK=${1:-/tmp/mvtec2coco_gpu_sam}
STEPS=${2:-200}
PY=${PYTHON:-python3}
PRESET=${PRESET:-bottle}
MODEL_TYPE=${MODEL_TYPE:-vit_b}
DEVICE=${DEVICE:-cuda}
export YOLO_OFFLINE=1 YOLO_AUTOINSTALL=False
rm -rf "$WORK"; mkdir -p "$WORK"
start=$(date +%s)
$PY -m mvtec2coco synth "$WORK/bottle" --preset "$PRESET"
$PY -m mvtec2coco convert "$WORK/bottle" --format coco --out "$WORK/coco"
$PY -m mvtec2coco sam train --data "$WORK/coco" --config configs/sam/default.yaml --set checkpoint=none \
    --set model_type="$MODEL_TYPE" --set max_steps="$STEPS" --set epochs=100 --device "$DEVICE" --out "$WORK/run"
$PY - "$WORK/run/summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print(f"embedding cache: {s['encoder_calls']} encoder passes, {s['embedding_cache_seconds']} s total")
print(f"median optimizer step: {s['seconds_per_step']} s over {s['steps']} steps")
print(f"GPU memory (max allocated): {s['gpu_max_memory_mb']} MB")
print(f"val IoU before -> after: {s['before']['val']['all']['iou']:.4f} -> {s['after']['val']['all']['iou']:.4f}")
PY
for split in val test; do
    $PY -m mvtec2coco sam predict "$WORK/run" --data "$WORK/coco" --split $split --prompts ground-truth \
        --device "$DEVICE" --out "$WORK/pred_$split"
done
$PY -m mvtec2coco evaluate "$WORK/pred_test" --gt "$WORK/coco" --split test --val "$WORK/pred_val"
echo "wall time: $(( $(date +%s) - start )) s"
