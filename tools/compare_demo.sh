#!/usr/bin/env bash
# Every family on the same converted test images, scored by one evaluation, on one table:
# synth -> convert --format all -> train classifier, PatchCore, the autoencoder, YOLO-World and SAM briefly (random
# initialisation, small sizes: runs on a CPU) -> predict val and test -> evaluate -> compare.
# Usage: bash tools/compare_demo.sh [WORKDIR]
# PRESET (bottle), CATEGORY (bottle), DEVICE (auto), EPOCHS (classifier, 8), YW_EPOCHS (3), IMGSZ (320), SAM_EPOCHS (4),
# AE_EPOCHS (autoencoder, 20), AE_SIZE (64). With anomalib installed (`make anomalib`, or
# MVTEC2COCO_ANOMALIB_PYTHON), anomalib's PatchCore joins the table beside ours.
# override the defaults; the test suite runs it with PRESET=tiny and the smallest settings.
set -euo pipefail
WORK=${1:-/tmp/mvtec2coco_compare}
PY=${PYTHON:-python3}
PRESET=${PRESET:-bottle}
DEVICE=${DEVICE:-auto}
EPOCHS=${EPOCHS:-8}
YW_EPOCHS=${YW_EPOCHS:-3}
IMGSZ=${IMGSZ:-320}
SAM_EPOCHS=${SAM_EPOCHS:-4}
CLS_SIZE=${CLS_SIZE:-64}
CATEGORY=${CATEGORY:-bottle}
AE_EPOCHS=${AE_EPOCHS:-20}
AE_SIZE=${AE_SIZE:-64}
export YOLO_OFFLINE=1 YOLO_AUTOINSTALL=False YOLO_CONFIG_DIR="$WORK/.yolo_config"
M="$PY -m mvtec2coco"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
rm -rf "$WORK"; mkdir -p "$WORK"
if [ -z "${MVTEC2COCO_ANOMALIB_PYTHON:-}" ] && [ -x "$ROOT/.venv-anomalib/bin/python" ]; then
    export MVTEC2COCO_ANOMALIB_PYTHON="$ROOT/.venv-anomalib/bin/python"
fi
ANOMALIB=$($PY -c "from mvtec2coco.models.anomalib_bridge.run import interpreter; interpreter(); print(1)" 2>/dev/null || true)
start=$(date +%s)
$M synth "$WORK/data" --preset "$PRESET"
$M convert "$WORK/data" --category "$CATEGORY" --format all --out "$WORK/conv" --split 0.6,0.2,0.2  # defects in each subset
SPLIT="$WORK/conv/meta/split.csv"  # every family trains on the conversion's train subset only

$M classifier train --config "$ROOT/configs/classifier/01_resnet18_baseline.yaml" --data "$WORK/data" \
    --set data.split="$SPLIT" --set "data.categories=[$CATEGORY]" --set model.weights=none --set data.image_size="$CLS_SIZE" --set train.epochs="$EPOCHS" \
    --set train.batch_size=16 --device "$DEVICE" --out "$WORK/runs/classifier"
$M patchcore train --data "$WORK/data" --category "$CATEGORY" --set data.split="$SPLIT" --set model.backbone=resnet18 \
    --set model.weights=none --set model.image_size=128 --set model.dim=128 --set model.coreset_ratio=0.05 \
    --device "$DEVICE" --out "$WORK/runs/patchcore"
$M autoencoder train --data "$WORK/data" --category "$CATEGORY" --set data.split="$SPLIT" \
    --set model.image_size="$AE_SIZE" --set "model.channels=[8,16,32]" --set model.latent_dim=32 \
    --set model.epochs="$AE_EPOCHS" --set model.batch_size=8 --device "$DEVICE" --out "$WORK/runs/autoencoder"
if [ -n "$ANOMALIB" ]; then
    $M anomalib train --model patchcore --data "$WORK/data" --category "$CATEGORY" --split "$SPLIT" \
        --arg coreset_sampling_ratio=0.01 \
        --out "$WORK/runs/anomalib_patchcore"
fi
$M yolo-world train --data "$WORK/conv" --set model=yolov8s-worldv2.yaml --set text_encoder=random \
    --set epochs="$YW_EPOCHS" --set imgsz="$IMGSZ" --set batch=8 --set workers=0 --set plots=false \
    --device "$DEVICE" --out "$WORK/runs/yolo_world"
$M sam train --data "$WORK/conv" --set model_type=tiny --set checkpoint=none --set epochs="$SAM_EPOCHS" \
    --set lr=3e-3 --device "$DEVICE" --out "$WORK/runs/sam"

for split in val test; do
    $M classifier predict "$WORK/runs/classifier" --data "$WORK/conv" --split $split --device "$DEVICE" \
        --out "$WORK/pred/classifier_$split"
    $M patchcore predict "$WORK/runs/patchcore" --data "$WORK/conv" --split $split --device "$DEVICE" \
        --out "$WORK/pred/patchcore_$split"
    $M autoencoder predict "$WORK/runs/autoencoder" --data "$WORK/conv" --split $split --device "$DEVICE" \
        --out "$WORK/pred/autoencoder_$split"
    if [ -n "$ANOMALIB" ]; then
        $M anomalib predict "$WORK/runs/anomalib_patchcore" --data "$WORK/conv" --split $split \
            --out "$WORK/pred/anomalib_patchcore_$split"
    fi
    $M yolo-world predict "$WORK/runs/yolo_world" --data "$WORK/conv" --split $split --conf 0.001 --imgsz "$IMGSZ" \
        --device "$DEVICE" --out "$WORK/pred/yolo_world_$split"
    $M sam predict "$WORK/runs/sam" --data "$WORK/conv" --split $split --device "$DEVICE" \
        --boxes "$WORK/pred/yolo_world_$split/predictions.json" --out "$WORK/pred/yolo_world_sam_$split"
done
for run in classifier patchcore autoencoder ${ANOMALIB:+anomalib_patchcore} yolo_world yolo_world_sam; do
    $M evaluate "$WORK/pred/${run}_test" --gt "$WORK/conv" --split test --val "$WORK/pred/${run}_val"
done
$M compare "$WORK"/pred/*_test --markdown "$WORK/compare.md" --plot "$WORK/compare.png"
echo "table: $WORK/compare.md, figure: $WORK/compare.png; wall time: $(( $(date +%s) - start )) s"
