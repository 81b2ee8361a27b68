#!/usr/bin/env bash
# The loader benchmark on the GPU machine, in one device call, GPU contender included.
#
# Prepare here first (../shared/device/README.md): the DALI parts plus fpload's own packages the
# GPU machine lacks, e.g.
#   ../shared/device/dali-parts.sh .dali 56 duckdb webdataset braceexpand zarr numcodecs donfig \
#       crc32c pydantic pydantic-core annotated-types typing-inspection lz4
# (plus pillow if `python3 -c "import PIL"` fails there: synth and the webdataset contender use it;
# without matplotlib the plot is skipped, the table and JSON lines are still written)
# then copy part-00.. into /tmp/dali one call each, and in the last call (carry the last part and
# SHA256SUMS) join them into /tmp/site and run:  bash benchmarks/gpu_loader.sh [SIZE=small]
#
# It builds the operator plugin for sm_90 against that DALI (a plugin built on the CPU machine
# links the wrong DALI), synthesises the data (cached under bench-results/cache), runs
# `fpload bench loader --size SIZE` with every contender (fpload-gpu too, since torch sees the
# GPU) and prints the table last. Results: bench-results/loader.jsonl and loader.png (copy them
# to $OUT to bring them back).
set -uo pipefail
cd "$(dirname "$0")/.."
SIZE=${1:-small}
export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
python3 -c "import nvidia.dali as d, torch; print('DALI', d.__version__, '| torch', torch.__version__, '| GPU', torch.cuda.get_device_name(0))" \
  || { echo "DALI or torch not importable: bring DALI first (../shared/device/README.md)"; exit 1; }
echo "== plugin build for sm_90"
rm -rf build/plugin
python3 -m fpload.ops build --cuda --arch 90 --json > /tmp/fpload_build.json 2> /tmp/fpload_build.log \
  || { tail -20 /tmp/fpload_build.log; echo "plugin build FAILED"; exit 1; }
echo "== fpload bench loader --size $SIZE (logs in /tmp/fpload_bench.log)"
python3 benchmarks/bench_loader.py --size "$SIZE" --out bench-results 2> /tmp/fpload_bench.log > /tmp/fpload_bench.txt
status=$?
[ $status -eq 0 ] || tail -20 /tmp/fpload_bench.log
if [ -n "${OUT:-}" ]; then
  cp bench-results/loader.jsonl bench-results/loader.png /tmp/fpload_bench.log "$OUT"/ 2>/dev/null || true
fi
echo
cat /tmp/fpload_bench.txt
exit $status
