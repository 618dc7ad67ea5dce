#!/usr/bin/env bash
# GPU training figures for benchmarks/README.md (issue 10): kimg/h and peak memory of the MAT trainer
# at 256 px, batch 8, fp32 and bf16, fast and reference layer paths. Under 8 minutes on one GPU.
# Usage (repository root, venv active): bash benchmarks/gpu_train.sh [extra args for gpu_train.py]
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
timeout 470 python benchmarks/gpu_train.py "$@"
