#!/usr/bin/env bash
# GPU check of the torchrun path: `inpaintbench run` under torchrun with 1 process (and 2 when two
# GPUs are visible) must write the same per_image.parquet as a single plain process.
#
# Why: the CPU tests only fake CUDA. This exercises the real NCCL group: each rank binding
# cuda:LOCAL_RANK before init_process_group, gather_object/all_gather on the rank's own GPU, and the
# final barrier while rank 0 computes the set metrics.
#
# Usage (from the repository root, venv active, on a GPU machine; no network needed):
#   bash benchmarks/gpu_torchrun_check.sh [OUT_ROOT]       # OUT_ROOT defaults to /tmp/x
#   DEVICE=cpu bash benchmarks/gpu_torchrun_check.sh       # dry run of the script itself (gloo, 2 procs)
# Exit status 0 = all runs agree; 1 = a difference (printed); anything else = a run failed.
set -euo pipefail

OUT_ROOT=${1:-/tmp/x}
export INPAINTBENCH_OFFLINE=1            # deep metrics become "unavailable"; pixel metrics are exact
export INPAINTBENCH_DIST_TIMEOUT_MIN=${INPAINTBENCH_DIST_TIMEOUT_MIN:-20}
BIN=$(command -v inpaintbench)
DEVICE=${DEVICE:-cuda}
ARGS=(run --model telea --limit 16 --device "$DEVICE" --overwrite)

if [[ "$DEVICE" == cpu ]]; then
    n_gpus=2  # not GPUs: the number of gloo processes to try
else
    n_gpus=$(python -c "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)")
fi
if [[ "$n_gpus" -lt 1 ]]; then
    echo "no CUDA device visible: nothing to check" >&2
    exit 2
fi
echo "visible GPUs: $n_gpus"
rm -rf "$OUT_ROOT"
mkdir -p "$OUT_ROOT"

echo "== single process"
"$BIN" "${ARGS[@]}" --out "$OUT_ROOT/single"
runs=(single)
for k in 1 2; do
    if [[ "$k" -gt "$n_gpus" ]]; then
        echo "== skipping torchrun --nproc_per_node=$k: only $n_gpus GPU(s)"
        continue
    fi
    echo "== torchrun --nproc_per_node=$k"
    torchrun --standalone --nproc_per_node="$k" "$BIN" "${ARGS[@]}" --out "$OUT_ROOT/torchrun$k"
    runs+=("torchrun$k")
done

python - "$OUT_ROOT" "${runs[@]}" <<'EOF'
"""Compare every run's per_image.parquet with the single-process one.

Same batches, same device, same kernels: the per-image values must be bit-identical, so the
comparison is exact. Only the per-batch wall time ("seconds") may differ."""
import sys
from pathlib import Path

import numpy as np
import pandas as pd

root, names = Path(sys.argv[1]), sys.argv[2:]


def load(name: str) -> pd.DataFrame:
    found = sorted((root / name).rglob("per_image.parquet"))
    if len(found) != 1:
        sys.exit(f"{name}: expected one per_image.parquet under {root / name}, found {found}")
    df = pd.read_parquet(found[0])
    return df.drop(columns=[c for c in df.columns if c == "seconds"]).sort_values("image_id", ignore_index=True)


base = load(names[0])
print(f"{names[0]}: {len(base)} rows, columns {list(base.columns)}")
failed = False
for name in names[1:]:
    other = load(name)
    bad = False
    if list(other.columns) != list(base.columns) or len(other) != len(base):
        print(f"{name}: columns/rows differ: {list(other.columns)} x {len(other)}")
        failed = True
        continue
    for col in base.columns:
        a, b = base[col].to_numpy(), other[col].to_numpy()
        if a.dtype.kind == "f":
            same = np.array_equal(a, b, equal_nan=True)
            detail = f"max |diff| = {np.nanmax(np.abs(a - b)) if not same else 0.0:.3g}"
        else:
            same = bool((a == b).all())
            detail = "values differ"
        if not same:
            print(f"{name}: column {col!r} differs from {names[0]}: {detail}")
            bad = True
    print(f"{name}: {'DIFFERENT' if bad else 'identical'} ({len(other)} rows)")
    failed |= bad
sys.exit(1 if failed else 0)
EOF
