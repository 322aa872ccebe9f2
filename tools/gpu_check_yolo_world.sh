#!/usr/bin/env bash
# GPU check for YOLO-World, on a machine with a CUDA GPU and no internet:
# synth --preset bottle -> convert -> 30 epochs of yolov8s-worldv2.yaml at 640 with random text embeddings,
# printing epoch time, GPU memory and mAP, then predicting val and test and ending with the one evaluation's
# table. Target: < 8 minutes.
# Usage: bash tools/gpu_check_yolo_world.sh [WORKDIR] [EPOCHS]
# PRESET, IMGSZ and DEVICE override bottle / 640 / 0 (the test suite smoke-runs it on CPU with tiny at 128).
set -euo pipefail
WORK=${1:-/tmp/mvtec2coco_gpu_yw}
EPOCHS=${2:-30}
PY=${PYTHON:-python3}
PRESET=${PRESET:-bottle}
IMGSZ=${IMGSZ:-640}
DEVICE=${DEVICE:-0}
export YOLO_OFFLINE=1 YOLO_AUTOINSTALL=False YOLO_CONFIG_DIR="$WORK/.yolo_config"
rm -rf "$WORK"; mkdir -p "$WORK"
start=$(date +%s)
$PY -m mvtec2coco synth "$WORK/bottle" --preset "$PRESET"
$PY -m mvtec2coco convert "$WORK/bottle" --format yolo,coco --out "$WORK/conv"
t0=$(date +%s)
$PY -m mvtec2coco yolo-world train --data "$WORK/conv" --config configs/yolo_world/bottle.yaml \
    --set model=yolov8s-worldv2.yaml --set epochs="$EPOCHS" --set imgsz="$IMGSZ" --set text_encoder=random \
    --device "$DEVICE" --out "$WORK/run"
t1=$(date +%s)
$PY - "$WORK/run" "$EPOCHS" "$((t1 - t0))" <<'PY'
import csv, json, sys
run, epochs, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rows = list(csv.DictReader(open(f"{run}/results.csv")))
s = json.load(open(f"{run}/summary.json"))
print(f"epochs run: {len(rows)}; mean time per epoch: {seconds / max(1, len(rows)):.1f} s (incl. start-up)")
import torch
print(f"GPU: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none (CPU run)'}")
print(f"last epoch GPU memory (ultralytics' column): {rows[-1].get('GPU_mem', 'n/a')}")
print(f"val mAP50 {s['val']['map50']:.4f}, mAP50-95 {s['val']['map50_95']:.4f}")
if s.get("test"):
    print(f"test mAP50 {s['test']['map50']:.4f}, mAP50-95 {s['test']['map50_95']:.4f}")
PY
for split in val test; do
    $PY -m mvtec2coco yolo-world predict "$WORK/run" --data "$WORK/conv" --split $split --conf 0.001 \
        --imgsz "$IMGSZ" --device "$DEVICE" --out "$WORK/pred_$split"
done
$PY -m mvtec2coco evaluate "$WORK/pred_test" --gt "$WORK/conv" --split test --val "$WORK/pred_val"
echo "wall time: $(( $(date +%s) - start )) s"
