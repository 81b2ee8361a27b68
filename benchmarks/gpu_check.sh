#!/usr/bin/env bash
# One device call: build the plugin for sm_90 against the DALI brought per
# ../shared/device/README.md (PYTHONPATH=/tmp/site), run the standalone kernel check (GPU vs CPU
# twins + GB/s against a device-to-device copy, no DALI), then the in-pipeline GPU-vs-CPU tests.
# Prints a short table last. Usage: bash benchmarks/gpu_check.sh [N=256] [S=512]
set -uo pipefail
cd "$(dirname "$0")/.."
N=${1:-256}
S=${2:-512}
status=0
echo "== standalone kernels (no DALI): build for sm_90"
nvcc -std=c++20 -O3 --fmad=false -arch=sm_90 -I csrc csrc/tests/kernel_check.cu -o /tmp/fpload_kernel_check \
  || { echo "kernel_check build FAILED"; exit 1; }
/tmp/fpload_kernel_check "$N" "$S" > /tmp/fpload_kernel_check.txt 2>&1 || status=1
if python3 -c "import nvidia.dali" 2>/dev/null; then
  echo "== plugin build for sm_90 against DALI $(python3 -c 'import nvidia.dali as d; print(d.__version__)')"
  rm -rf build/plugin
  python3 -m fpload.ops build --cuda --arch 90 --json || status=1
  echo "== in-pipeline GPU vs CPU agreement"
  python3 -m pytest -q -p no:cacheprovider tests/ops/test_gpu.py -m gpu 2>&1 | tail -5 || status=1
else
  echo "== no DALI importable: skipped the plugin build and the in-pipeline check"
fi
echo
echo "== summary (goal: fused warp >= 60% of the d2d copy bandwidth at 256 x 512x512 uint8)"
cat /tmp/fpload_kernel_check.txt
exit $status
