#!/usr/bin/env bash
# Issue 17's GPU figures (benchmarks/RESULTS.md, "GPU figures (issue 17)").
#   benchmarks/gpu_figures.sh wheels   here, with registry access: the wheels the GPU machine lacks
#   benchmarks/gpu_figures.sh          on the GPU machine: install the carried wheels beside the image's
#                                      packages, run benchmarks/sft_gpu.py --suite issue17 (JSON lines +
#                                      Markdown into $OUT)
# Wheel folders (each one optional at run time; whichever was carried is installed):
#   .cache/gpu-wheels               trl, datasets, dill, multiprocess (CPython 3.12), liger-kernel  ~2.8 MB
#   .cache/gpu-wheels-transformers  transformers at the project's pin (the image's is older)           13 MB
#   .cache/gpu-wheels-pyarrow       pyarrow 24 for CPython 3.12, only if the image's is older than 24   47 MB
# The last two together exceed the 64 MiB a call may carry: carry the first two; if this script stops
# saying pyarrow is too old, carry the first and the third.
set -euo pipefail
cd "$(dirname "$0")/.."
# WHEEL_DIRS overrides the folders (a CPU check of this script uses CPython 3.11 wheels).
read -r -a DIRS <<<"${WHEEL_DIRS:-.cache/gpu-wheels .cache/gpu-wheels-transformers .cache/gpu-wheels-pyarrow}"

if [[ "${1:-}" == "wheels" ]]; then
    PIP=${PIP:-.venv/bin/pip}
    py312=(--no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64)
    "$PIP" download --no-deps -d "${DIRS[0]}" trl==1.16.0 datasets==5.2.0 dill==0.4.1 liger-kernel==0.8.5
    "$PIP" download "${py312[@]}" -d "${DIRS[0]}" multiprocess==0.70.19
    "$PIP" download --no-deps -d "${DIRS[1]}" transformers==5.23.0
    "$PIP" download "${py312[@]}" -d "${DIRS[2]}" pyarrow==24.0.0
    du -ch "${DIRS[@]}"
    exit 0
fi

OUT=${OUT:-benchmarks/results}
mkdir -p "$OUT"
SITE=$(mktemp -d)
for dir in "${DIRS[@]}"; do
    if compgen -G "$dir/*.whl" >/dev/null; then
        python3 -m pip install --quiet --no-index --no-deps --no-compile --target "$SITE" "$dir"/*.whl
    fi
done
export PYTHONPATH="$SITE:$PWD" TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
if ! python3 -c 'import sys, pyarrow; sys.exit(int(pyarrow.__version__.split(".")[0]) < 24)'; then
    echo "pyarrow < 24 here (datasets needs >= 24): carry .cache/gpu-wheels-pyarrow" >&2
    exit 3
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/nvidia-smi.txt" || true
python3 -c 'import torch, transformers, trl, datasets, pyarrow; print(torch.__version__, transformers.__version__,
    trl.__version__, datasets.__version__, pyarrow.__version__, "cuda:", torch.cuda.is_available())'
# SUITE=smoke DEVICE=cpu runs the same steps with tiny shapes (a check of this script off the GPU machine).
timeout "${SUITE_TIMEOUT:-480}" python3 benchmarks/sft_gpu.py --suite "${SUITE:-issue17}" \
    --device "${DEVICE:-cuda}" --budget "${BUDGET:-450}" \
    --results "$OUT/gpu_figures.jsonl" --markdown "$OUT/gpu_figures.md"
