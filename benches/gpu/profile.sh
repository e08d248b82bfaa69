#!/usr/bin/env bash
# Sampling profile of gpu_step's host threads, for steps that are host-bound (host enqueue time
# close to the step time). Attaches cuda-gdb SAMPLES times during the timed steps and dumps
# every thread's stack. Needs a binary with its symbol table (`strip --strip-debug`, not `strip`), e.g.
#   cp target/release/gpu_step x && strip --strip-debug x && xz -c x > gpu-xz/gpu_step.xz
# Env: BIN, SAMPLES (8), DELAY (seconds before the first sample: past init and autotune), LEN.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
BIN=${BIN:-gpu-dist/gpu_step}; SAMPLES=${SAMPLES:-8}; DELAY=${DELAY:-75}; LEN=${LEN:-1024}
source benches/gpu/env.sh
"$BIN" --shape 0.5b --pairs 8 --len "$LEN" --steps 80 --warmup 2 > "$OUT/prof-run.txt" 2> "$OUT/prof-run.err" &
PID=$!
sleep "$DELAY"
# GPU busy share during timed steps: near 100% = GPU-bound, well under = host-bound.
nvidia-smi dmon -s u -c 8 > "$OUT/prof-dmon.txt" 2>&1
for i in $(seq "$SAMPLES"); do
  echo "=== sample $i $(date +%T.%N)" >> "$OUT/prof-stacks.txt"
  timeout 60 cuda-gdb -q -batch -p "$PID" -ex "set pagination off" -ex "thread apply all bt 30" >> "$OUT/prof-stacks.txt" 2>&1
  sleep 0.5
done
# Let the run finish (its summary has the step time and the host phase split).
timeout 120 tail --pid="$PID" -f /dev/null || kill "$PID" 2>/dev/null
cat "$OUT/prof-run.txt"
tail -5 "$OUT/prof-run.err"
cat "$OUT/prof-dmon.txt"
grep -c "^Thread" "$OUT/prof-stacks.txt"
