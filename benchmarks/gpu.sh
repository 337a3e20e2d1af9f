#!/usr/bin/env bash
# The GPU figures in one prepared run (about 5-7 minutes on one H100/H200; each step has
# its own time limit so one slow step cannot eat the others'). Run from the repository
# root on the GPU machine; figures and logs go to ${OUT:-runs/gpu}.
#
#   bash benchmarks/gpu.sh                 # then copy the printed figures into the README
#
# JAX with CUDA, flax, optax, chex and orbax are installed there; distrax, rlax and their
# dependencies may not be: put their wheels (py3 / the machine's Python) in .whl/ first.
set -uo pipefail
OUT="${OUT:-runs/gpu}"
mkdir -p "$OUT"
if ! python -c "import distrax, rlax" 2>/dev/null; then
  if ls .whl/*.whl >/dev/null 2>&1; then
    python -m pip install -q --no-deps .whl/*.whl
  else
    echo "distrax/rlax missing and no .whl/ folder: the CATCH and DQN steps will fail" >&2
  fi
fi
python -m pip install -q --no-deps -e . >/dev/null 2>&1 || true
export CATCHJAX_COMPILE_CACHE=off  # honest compile times
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python -c "import jax; print('jax', jax.__version__, jax.devices())" | tee -a "$OUT/gpu.txt"
timeout 270 python benchmarks/run_all.py --out "$OUT" --catch-max-trials 5000 \
  2>&1 | tee "$OUT/run_all.log"
timeout 150 python benchmarks/catch_throughput.py --repeats 3 --scale 2000,8000 \
  --eager-epochs 0 2>&1 | tee "$OUT/catch_throughput.log"
timeout 120 python benchmarks/dqn_throughput.py --steps 2000000 --ref-steps 256 \
  2>&1 | tee "$OUT/dqn_throughput.log"
echo "done; logs in $OUT"
