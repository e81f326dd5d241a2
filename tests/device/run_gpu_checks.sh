#!/usr/bin/env bash
# run_gpu_checks.sh — the one script for a lent GPU machine (issue [5]).
#
# Configures a Release build with EMBER_CUDA=ON in $BUILD (default build-gpu/),
# builds with -j$JOBS (16), runs ember-info, then the op, gradient, example and
# CUDA suites with EMBER_BACKEND=cuda (ctest, filtered), then ember-bench-core and
# ember-bench-mlp (--quick; --pytorch only when `python3 -c 'import torch'`
# works), and prints a short table last. Every step runs under `timeout`; the
# whole script is meant to finish in under 5 minutes on an H100.
#
# Usage (from the repository root):  tests/device/run_gpu_checks.sh
# Exit status: 0 when the CUDA device is there and no test failed, 1 otherwise.
# Logs: $BUILD/gpu-checks/*.log.
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
BUILD=${BUILD:-$ROOT/build-gpu}
JOBS=${JOBS:-16}
LOGS=$BUILD/gpu-checks
mkdir -p "$LOGS"
T0=$(date +%s)
ROWS=()          # lines of the final table
STATUS=0

row() { ROWS+=("$(printf '%-26s %s' "$1" "$2")"); }
step() { echo; echo "=== $* ($(( $(date +%s) - T0 )) s)"; }
finish() {
    echo
    echo "================ GPU checks: summary ($(( $(date +%s) - T0 )) s) ================"
    printf '%-26s %s\n' "step / suite" "result"
    for r in "${ROWS[@]}"; do echo "$r"; done
    exit "$STATUS"
}

step "machine"
timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader \
    > "$LOGS/nvidia-smi.log" 2>&1
cat "$LOGS/nvidia-smi.log"
row "nvidia-smi" "$(head -1 "$LOGS/nvidia-smi.log" 2>/dev/null || echo unavailable)"

step "configure ($BUILD)"
if ! timeout 120 cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DEMBER_CUDA=ON \
        > "$LOGS/configure.log" 2>&1; then
    tail -30 "$LOGS/configure.log"
    row "configure" "FAILED (see $LOGS/configure.log)"; STATUS=1; finish
fi
row "configure" "ok"

step "build (-j$JOBS)"
if ! timeout 240 cmake --build "$BUILD" -j"$JOBS" > "$LOGS/build.log" 2>&1; then
    grep -E "error|Error" "$LOGS/build.log" | head -30
    row "build" "FAILED (see $LOGS/build.log)"; STATUS=1; finish
fi
row "build" "ok, $(grep -ci 'warning' "$LOGS/build.log") warning lines"

step "ember-info (EMBER_BACKEND=cuda)"
EMBER_BACKEND=cuda timeout 30 "$BUILD/tools/ember-info" > "$LOGS/ember-info.log" 2>&1
info_rc=$?
cat "$LOGS/ember-info.log"
if [ "$info_rc" -ne 0 ] || ! grep -q "cuda:0" "$LOGS/ember-info.log"; then
    why=$(grep -m1 "libember-cuda.so" "$LOGS/ember-info.log" | sed 's/^ *//')
    echo
    echo "NO CUDA DEVICE: ember-info exited $info_rc; ${why:-the cuda plugin was not found}"
    row "ember-info" "NO CUDA DEVICE (rc $info_rc): ${why:-no cuda plugin}"
    STATUS=1
    finish
fi
row "ember-info" "ok: $(grep -m1 -A1 '^  cuda:0' "$LOGS/ember-info.log" | tail -1 | sed 's/^ *name: *//')"

step "test suites on cuda (ctest)"
# The op, gradient, nn/optim/checkpoint suites, the examples and the CUDA tests; not
# the .on_fake_device copies (they pin EMBER_BACKEND=fake) nor the loader tests.
export EMBER_BACKEND=cuda
timeout 200 ctest --test-dir "$BUILD" -j8 --timeout 90 \
    -R '^(test_|example_)' -E 'on_fake_device|^test_loader|^test_cuda_load|fuzz' \
    --output-on-failure > "$LOGS/ctest.log" 2>&1
ctest_rc=$?
unset EMBER_BACKEND
[ "$ctest_rc" -eq 124 ] && echo "ctest TIMED OUT (200 s)"
grep -E "Test +#" "$LOGS/ctest.log" | sed 's/^ *//' | head -80
# per suite: passed / failed / skipped
summarise() { # $1 label, $2 regex on the test name
    awk -v re="$2" '
        / Test +#[0-9]+: / {
            name = $0; sub(/.*Test +#[0-9]+: /, "", name); sub(/ .*/, "", name)
            if (name !~ re) next
            if ($0 ~ /Passed/) p++; else if ($0 ~ /Skipped|Not Run/) s++; else f++
        }
        END { printf "%d passed, %d failed, %d skipped", p, f, s }' "$LOGS/ctest.log"
}
ops=$(summarise ops '^test_(elementwise|reduce|linalg|data|views|inplace|creation|errors|dtypes|api|scope|csv|data_loader)$')
grads=$(summarise grads '^test_grad_')
nn=$(summarise nn '^test_(nn_|optim|safetensors|checkpoint)')
ex=$(summarise ex '^example_')
cu=$(summarise cu '^test_cuda_')
row "op suites (cuda)" "$ops"
row "gradient suites (cuda)" "$grads"
row "nn/optim/io (cuda)" "$nn"
row "examples (cuda)" "$ex"
row "test_cuda_ops" "$cu"
fb=$(grep -m1 -o "em_fallback_count [0-9]*" "$LOGS/ctest.log" || true)
nfb=$(grep -o "op [0-9]* ran on the CPU backend" "$LOGS/ctest.log" | sort -u | wc -l)
fbops=$(grep -o "op [0-9]* ran on the CPU backend" "$LOGS/ctest.log" | awk '{print $2}' | sort -n -u | tr '\n' ' ')
row "CPU fallbacks" "${fb:-em_fallback_count not printed}; ops that fell back: $nfb (${fbops:-none})"
if [ "$ctest_rc" -ne 0 ]; then STATUS=1; fi
[ "$ctest_rc" -eq 124 ] && row "ctest" "TIMED OUT after 200 s"

step "benchmarks"
pt=""
if timeout 30 python3 -c 'import torch' > /dev/null 2>&1; then pt="--pytorch"; fi
EMBER_BACKEND=cuda timeout 150 "$BUILD/bench/ember-bench-core" --quick $pt > "$LOGS/bench-core.log" 2>&1
bc_rc=$?
cat "$LOGS/bench-core.log"
EMBER_BACKEND=cuda timeout 90 "$BUILD/bench/ember-bench-mlp" --quick $pt > "$LOGS/bench-mlp.log" 2>&1
bm_rc=$?
cat "$LOGS/bench-mlp.log"
key() { grep -iE "$2" "$1" | head -4 | sed 's/^ *//' | tr -s ' ' | paste -sd ';' -; }
row "ember-bench-core${pt:+ $pt}" "rc $bc_rc; $(key "$LOGS/bench-core.log" 'matmul|add|GB/s')"
row "ember-bench-mlp${pt:+ $pt}" "rc $bm_rc; $(key "$LOGS/bench-mlp.log" 'batch|samples')"
finish
