#!/usr/bin/env bash
# The GPU checks the core and speed issues ask for, as one command for the device tool
# (about 5 minutes on an H100/H200): the GPU-marked tests, 50 epochs with
# configs/gpu.yaml, configs/best.yaml on the GPU, and the benchmark on CUDA. Results
# land in $OUT (or ./gpu_check).
#
# The device image has torch, lightning, torchmetrics, tensorboard, scikit-learn and
# matplotlib but not jsonargparse or kornia (nor optuna, litserve and selenium, so only
# the test files that hold GPU tests are collected). Before the run, here, in the
# repository root:
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux2014_x86_64 -d .whl \
#     jsonargparse==4.53.0 docstring-parser==0.18.0 typeshed-client==2.15.0 \
#     kornia==0.9.0 kornia_rs==0.2.0
# then run this script with `.whl` carried:  bash scripts/gpu_check.sh
set -uo pipefail
out="${OUT:-gpu_check}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl && export PYTHONPATH="/tmp/site:$PWD" || exit 1

{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch, lightning; print('torch', torch.__version__, 'lightning', lightning.__version__)"
} 2>&1 | tee "$out/machine.txt"

gpu_tests=$(grep -l "mark.gpu" tests/test_*.py) || exit 1  # none: pytest would run them all
# shellcheck disable=SC2086  # one word per file
timeout 120 python3 -m pytest -q -rA -m gpu -p no:cacheprovider $gpu_tests 2>&1 |
  tee "$out/gpu_tests.txt"

timeout 90 python3 -m digits.fit --config configs/gpu.yaml --trainer.max_epochs 50 \
  --trainer.enable_progress_bar false 2>&1 | tee "$out/fit_gpu.txt"

timeout 120 python3 -m digits.fit --config configs/best.yaml --config configs/gpu.yaml \
  --trainer.enable_progress_bar false 2>&1 | tee "$out/fit_best_gpu.txt"

# The timeouts add up to 570 s, inside the device tool's 600 s a command.
timeout 240 python3 -m digits.bench --device all --repeats 3 2>&1 | tee "$out/bench.txt"
