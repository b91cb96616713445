#!/usr/bin/env bash
# AutoAttack on all 10,000 Fashion-MNIST test images for the four robust presets, on a borrowed
# GPU machine, as one command that resumes the tracked ledger and brings it back.
#
# On a 2-core CPU one preset takes about four hours (Square's 5,000 queries per still-robust
# image are ~90 % of it); on a GPU, minutes. The four presets run side by side (a small CNN on
# 500 images leaves a large GPU mostly idle), each writing its ledger after every batch of 500,
# so whatever a time limit cuts off is kept and the same command goes on from there.
#
#   experiments/autoattack_on_gpu.sh prepare     # here, once: the wheel and the test split
#   experiments/autoattack_on_gpu.sh run         # there, with OUT set; ledgers land in $OUT/ledger
#   experiments/autoattack_on_gpu.sh collect DIR # here: DIR/ledger/*.json into the tracked ledger
#
# `prepare` puts the torchattacks wheel in .whl/ and the test split in data/fmnist-test/ (both
# git-ignored: carry them). The evaluation reads only the test split, but the data loader wants
# all four IDX files and the training images do not fit in the transfer, so `run` stands the
# test files in for the training ones; nothing trains, and the training split is never read.
# Batch size 500 is part of the ledger's key: keep it, or the runs start a fresh ledger.
set -euo pipefail

PRESETS=(der trades weat pgdat)
LEDGER=experiments/results/autoattack-10k
PER_PRESET_SECONDS=${PER_PRESET_SECONDS:-520}  # under the 600-s limit of one device command
DEVICE=${DEVICE:-cuda}  # DEVICE=cpu PER_PRESET_SECONDS=100 tries the plumbing here

case "${1:-}" in
prepare)
    mkdir -p .whl data/fmnist-test
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 -d .whl torchattacks==3.5.1
    cp /usr/share/datasets/fashion-mnist/t10k-* data/fmnist-test/
    ;;
run)
    : "${OUT:?set OUT to the folder whose files come back}"
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:$PWD
    data=/tmp/fmnist
    mkdir -p "$data" "$OUT/ledger"
    cp data/fmnist-test/t10k-* "$data/"
    cp "$data/t10k-images-idx3-ubyte.gz" "$data/train-images-idx3-ubyte.gz"
    cp "$data/t10k-labels-idx1-ubyte.gz" "$data/train-labels-idx1-ubyte.gz"
    cp "$LEDGER"/*.json "$OUT/ledger/"
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
    for preset in "${PRESETS[@]}"; do
        OMP_NUM_THREADS=4 PYTHONUNBUFFERED=1 timeout "$PER_PRESET_SECONDS" \
            python3 -m hubmodels eval --model "fmnist-smallcnn-$preset" --pgd-steps \
            --device "$DEVICE" --data-root "$data" --ledger-dir "$OUT/ledger" \
            >"/tmp/aa-$preset.log" 2>&1 &
    done
    wait || true
    for preset in "${PRESETS[@]}"; do
        echo "== $preset"
        tr '\r' '\n' <"/tmp/aa-$preset.log" | grep -v "it/s" | tail -n 4 || true
    done
    python3 experiments/autoattack_progress.py --ledgers "$OUT/ledger"
    ;;
collect)  # stop local runs of the same evaluation first: the copies replace the ledger files
    cp "${2:?the folder that came back from the device}"/ledger/*.json "$LEDGER/"
    python3 experiments/autoattack_progress.py
    ;;
*)
    sed -n '2,19p' "$0"
    exit 2
    ;;
esac
