#!/usr/bin/env bash
# run_gpu_checks.sh — the one script for a lent GPU machine (issues [4] and [5]).
#
# Builds Ember (Release, CUDA on; Vulkan too when a loader, headers and glslc are
# found, on this machine or in $EMBER_GPU_DEPS), then within a time budget:
#   1. ember-info (all backends and devices, refusal reasons);
#   2. benchmarks: tests/device/gpu_bench.c through Ember on cuda,
#      tests/device/cublas_ref.cu (cuBLAS called directly, device copy bandwidth),
#      tests/device/pytorch_gpu.py (PyTorch eager on the same card, if importable),
#      ember-bench-mlp on cuda; then gpu_bench on vulkan, and its f32 matmuls again
#      with EMBER_VULKAN_MATMUL=generic (the plain tiled shader) for comparison;
#   3. the op, gradient, nn and example suites with EMBER_BACKEND=cuda, and the
#      CUDA plugin's own tests (ctest, filtered), counting CPU fallbacks;
#   4. ember-bench-dataloader on cpu and cuda (16 cores: the DataLoader target of
#      issue [3] needs cores the 2-core VM lacks), random samples (--work 1) and a
#      heavier 4-round decode;
#   5. the Vulkan suites (test_vulkan.*, *.on_vulkan) on the GPU's Vulkan driver
#      with the validation layer on;
#   6. test_cuda_ops and test_cuda_vec_lt on a plugin built with compute_80 PTX only,
#      which the driver JIT-compiles (the A100 code paths, run on this GPU).
# and prints a short table last: suites, then each figure with its peer and target.
#
# Environment:
#   BUILD            build folder (default build-gpu/)
#   JOBS             parallel build jobs (default 16)
#   BUDGET_S         seconds for the whole script (default 420); a step that would
#                    not fit in what is left is reported "skipped (time)"
#   EMBER_GPU_DEPS   a folder holding bin/glslc, lib/libvulkan.so.1, lib/libshaderc.so.1,
#                    lib-glvnd/ (libglvnd's libGLdispatch.so.0 and X11 libraries, which the
#                    NVIDIA Vulkan driver needs; put on the library path for Vulkan steps only),
#                    include/vulkan and layers/ (the validation layer) for a machine
#                    that lacks them (the lent machines have no Vulkan loader)
#   OUT              when set, the logs are also packed into $OUT/gpu-checks-logs.tgz
#   STEPS            which steps after the build to run, comma-separated (default all):
#                    bench (cuda, cuBLAS, PyTorch, MLP), vkbench, cuda (suites), ptx,
#                    dataloader, vulkan (suites); e.g. STEPS=vkbench,vulkan
#
# Usage (from the repository root):  tests/device/run_gpu_checks.sh
# Exit status: 0 when the CUDA device is there and no test failed, 1 otherwise.
# Logs: $BUILD/gpu-checks/*.log.
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
BUILD=${BUILD:-$ROOT/build-gpu}
JOBS=${JOBS:-16}
BUDGET_S=${BUDGET_S:-420}
LOGS=$BUILD/gpu-checks
mkdir -p "$LOGS"
T0=$(date +%s)
ROWS=()          # lines of the suites table
STATUS=0

elapsed() { echo $(( $(date +%s) - T0 )); }
left() { echo $(( BUDGET_S - $(elapsed) )); }
row() { ROWS+=("$(printf '%-30s %s' "$1" "$2")"); }
step() { echo; echo "=== $* ($(elapsed) s)"; }
# fits SECONDS: true when at least SECONDS of the budget are left
fits() { [ "$(left)" -ge "$1" ]; }
# want STEP: true when STEPS (default all) names the step
STEPS=${STEPS:-bench,vkbench,cuda,ptx,dataloader,vulkan}
want() { case ",$STEPS," in *",$1,"*) return 0 ;; *) row "$1" "not asked for (STEPS=$STEPS)"; return 1 ;; esac; }
# val LOG KEY: the value of a "key value" line, or "-"
val() { local v; v=$(awk -v k="$2" '$1 == k { print $2; exit }' "$1" 2>/dev/null); echo "${v:--}"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }

perf_table() {
    local E="$LOGS/gpu-bench-cuda.log" V="$LOGS/gpu-bench-vulkan.log" G="$LOGS/gpu-bench-vulkan-generic.log" C="$LOGS/cublas-ref.log" P="$LOGS/pytorch-gpu.log" M="$LOGS/bench-mlp.log"
    local copy; copy=$(val "$C" copy_256M_gbs)
    echo
    printf '%-22s %10s %10s %10s %10s  %s\n' "figure" "ember-cuda" "ember-vk" "cuBLAS/cp" "PyTorch" "target (issue) -> measured ratio"
    local k
    for k in matmul_f32_1024_tflops matmul_f32_4096_tflops matmul_bf16_8192_tflops matmul_f16_8192_tflops; do
        local e v c p t=""
        e=$(val "$E" $k); v=$(val "$V" $k); c=$(val "$C" $k); p=$(val "$P" $k)
        case $k in
            matmul_f32_4096_tflops) t="cuda >= 0.90 cuBLAS: $(ratio "$e" "$c"); vk >= 0.5 cuBLAS: $(ratio "$v" "$c") (generic shader $(val "$G" $k))" ;;
            matmul_f32_1024_tflops) t="vk/cuBLAS $(ratio "$v" "$c") (generic shader $(val "$G" $k))" ;;
            matmul_bf16_8192_tflops) t="cuda >= 600 TFLOP/s: $e" ;;
        esac
        printf '%-22s %10s %10s %10s %10s  %s\n' "${k%_tflops} TF/s" "$e" "$v" "$c" "$p" "$t"
    done
    local ea va pa
    ea=$(val "$E" add_256M_gbs); va=$(val "$V" add_256M_gbs); pa=$(val "$P" add_256M_gbs)
    printf '%-22s %10s %10s %10s %10s  %s\n' "add 256M f32 GB/s" "$ea" "$va" "$copy" "$pa" \
        "cuda >= 0.80 copy: $(ratio "$ea" "$copy"); vk >= 0.70 copy: $(ratio "$va" "$copy")"
    printf '%-22s %10s %10s %10s %10s\n' "clone 256M f32 GB/s" "$(val "$E" clone_256M_gbs)" \
        "$(val "$V" clone_256M_gbs)" "$copy" "$(val "$P" clone_256M_gbs)"
    printf '%-22s %10s %10s %10s %10s\n' "add 16 f32 us/op" "$(val "$E" add16_us)" "$(val "$V" add16_us)" "-" "$(val "$P" add16_us)"
    local b
    for b in 1 32 256; do
        local em pm
        em=$(awk -F'|' -v b="$b" '{ k = $1; gsub(/ /, "", k) } k == b { split($2, f, " "); print f[1]; exit }' "$M" 2>/dev/null); em=${em:--}
        pm=$(val "$P" mlp_b${b}_sps)
        printf '%-22s %10s %10s %10s %10s  %s\n' "MLP step b$b samples/s" "$em" "-" "-" "$pm" \
            "$( [ "$b" = 32 ] && echo "cuda > PyTorch: $(ratio "$em" "$pm")")"
    done
    echo "(fallbacks during gpu_bench: cuda $(val "$E" fallbacks), vulkan $(val "$V" fallbacks))"
}

finish() {
    echo
    echo "================ GPU checks: summary ($(elapsed) s of $BUDGET_S) ================"
    printf '%-30s %s\n' "step / suite" "result"
    for r in "${ROWS[@]}"; do echo "$r"; done
    perf_table
    if [ -n "${OUT:-}" ] && [ -d "${OUT:-}" ]; then
        tar -czf "$OUT/gpu-checks-logs.tgz" -C "$BUILD" gpu-checks 2>/dev/null
    fi
    exit "$STATUS"
}

step "machine"
timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader \
    > "$LOGS/nvidia-smi.log" 2>&1
cat "$LOGS/nvidia-smi.log"
row "nvidia-smi" "$(head -1 "$LOGS/nvidia-smi.log" 2>/dev/null || echo unavailable)"
{ nvcc --version | tail -2; cmake --version | head -1; cc --version | head -1; } 2>&1 | tee "$LOGS/tools.log"

# ---- Vulkan prerequisites: loader, headers, glslc, validation layer, NVIDIA ICD ----
VK_FLAGS=(-DEMBER_VULKAN=OFF)
VK_WHY=""
if [ -n "${EMBER_GPU_DEPS:-}" ]; then
    DEPS=$(cd "$EMBER_GPU_DEPS" 2>/dev/null && pwd)
    if [ -z "$DEPS" ]; then
        VK_WHY="EMBER_GPU_DEPS=$EMBER_GPU_DEPS is not a folder"
    else
        export PATH="$DEPS/bin:$PATH"
        export LD_LIBRARY_PATH="$DEPS/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        [ -d "$DEPS/layers" ] && export VK_LAYER_PATH="$DEPS/layers"
    fi
fi
if [ -z "$VK_WHY" ]; then
    loader=""
    [ -n "${DEPS:-}" ] && [ -e "$DEPS/lib/libvulkan.so.1" ] && loader="$DEPS/lib/libvulkan.so.1"
    [ -z "$loader" ] && loader=$(ldconfig -p 2>/dev/null | awk '/libvulkan.so.1 /{print $NF; exit}')
    headers=""
    [ -n "${DEPS:-}" ] && [ -d "$DEPS/include/vulkan" ] && headers="$DEPS/include"
    [ -z "$headers" ] && [ -d /usr/include/vulkan ] && headers=/usr/include
    glslc_bin=$(command -v glslc || true)
    if [ -z "$loader" ]; then
        VK_WHY="NO VULKAN LOADER: libvulkan.so.1 is not installed here (Debian/Ubuntu package libvulkan1); pass EMBER_GPU_DEPS=<folder with lib/libvulkan.so.1>"
    elif [ -z "$headers" ] || [ -z "$glslc_bin" ]; then
        VK_WHY="no Vulkan headers or glslc here (packages libvulkan-dev, glslc); pass EMBER_GPU_DEPS=<folder>"
    else
        VK_FLAGS=(-DEMBER_VULKAN=ON -DVulkan_INCLUDE_DIR="$headers" -DVulkan_LIBRARY="$loader"
                  -DEMBER_GLSLC="$glslc_bin")
        if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ]; then
            # The driver's own folder first (the lent machines mount it there); the NVIDIA ICD
            # (libGLX_nvidia.so.0) needs libglvnd's libGLdispatch.so.0, which the deps carry.
            for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json \
                       /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
                if [ -e "$icd" ]; then export VK_DRIVER_FILES="$icd"; break; fi
            done
        fi
    fi
fi
row "vulkan prerequisites" "${VK_WHY:-ok (ICD ${VK_DRIVER_FILES:-default search})}"

HAVE_VK=0
if [ "$STEPS" = ptx ]; then
    row "main build" "not needed (STEPS=ptx)"
else
    step "configure ($BUILD)"
    if ! timeout 120 cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DEMBER_CUDA=ON \
            "${VK_FLAGS[@]}" > "$LOGS/configure.log" 2>&1; then
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
    [ -e "$BUILD/plugins/libember-vulkan.so" ] && HAVE_VK=1

    step "ember-info"
    timeout 30 "$BUILD/tools/ember-info" > "$LOGS/ember-info.log" 2>&1
    cat "$LOGS/ember-info.log"
    EMBER_BACKEND=cuda timeout 30 "$BUILD/tools/ember-info" > "$LOGS/ember-info-cuda.log" 2>&1
    info_rc=$?
    if [ "$info_rc" -ne 0 ] || ! grep -q "cuda:0" "$LOGS/ember-info-cuda.log"; then
        why=$(grep -m1 "libember-cuda.so" "$LOGS/ember-info-cuda.log" | sed 's/^ *//')
        echo
        echo "NO CUDA DEVICE: ember-info exited $info_rc; ${why:-the cuda plugin was not found}"
        row "ember-info" "NO CUDA DEVICE (rc $info_rc): ${why:-no cuda plugin}"
        STATUS=1
        finish
    fi
    row "ember-info" "ok: $(grep -m1 -A1 '^  cuda:0' "$LOGS/ember-info-cuda.log" | tail -1 | sed 's/^ *name: *//')"
fi

# summarise LOG REGEX: "p passed, f failed, s skipped" over the ctest lines whose test name matches
summarise() {
    awk -v re="$2" '
        / Test +#[0-9]+: / {
            name = $0; sub(/.*Test +#[0-9]+: /, "", name); sub(/ .*/, "", name)
            if (name !~ re) next
            if ($0 ~ /Passed/) p++; else if ($0 ~ /Skipped|Not Run/) s++; else f++
        }
        END { printf "%d passed, %d failed, %d skipped", p, f, s }' "$1"
}
failures() { grep -E "Test +#" "$1" | grep -vE "Passed|Skipped|Not Run" | sed -E 's/.*Test +#[0-9]+: //; s/ .*//' | tr '\n' ' '; }

step "benchmarks"
want bench && BENCH=1 || BENCH=0
if [ "$BENCH" = 1 ] && fits 40; then
    EMBER_BACKEND=cuda timeout 60 "$BUILD/tests/device/gpu_bench" cuda > "$LOGS/gpu-bench-cuda.log" 2>&1
    row "gpu_bench cuda" "rc $?"
fi
if [ "$BENCH" = 1 ] && fits 40 && command -v nvcc > /dev/null; then
    if timeout 90 nvcc -O2 -arch=native -o "$BUILD/cublas_ref" "$ROOT/tests/device/cublas_ref.cu" -lcublas \
            > "$LOGS/cublas-build.log" 2>&1; then
        timeout 40 "$BUILD/cublas_ref" > "$LOGS/cublas-ref.log" 2>&1
        row "cublas_ref" "rc $?"
    else
        row "cublas_ref" "build FAILED: $(head -3 "$LOGS/cublas-build.log" | tr '\n' ' ')"
    fi
fi
if [ "$BENCH" = 1 ] && fits 60; then
    if timeout 30 python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' > /dev/null 2>&1; then
        timeout 90 python3 "$ROOT/tests/device/pytorch_gpu.py" > "$LOGS/pytorch-gpu.log" 2>&1
        row "pytorch_gpu.py" "rc $?, torch $(val "$LOGS/pytorch-gpu.log" torch_version)"
    else
        row "pytorch_gpu.py" "skipped: no python3 with torch.cuda here"
    fi
fi
if [ "$BENCH" = 1 ] && fits 40; then
    EMBER_BACKEND=cuda timeout 60 "$BUILD/bench/ember-bench-mlp" --quick > "$LOGS/bench-mlp.log" 2>&1
    row "ember-bench-mlp cuda" "rc $?"
fi

step "vulkan benchmarks (the new shaders, and the generic matmul shader beside them)"
if [ -n "${DEPS:-}" ] && [ -d "$DEPS/lib-glvnd" ]; then
    export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$DEPS/lib-glvnd"
fi
if want vkbench && [ "$HAVE_VK" = 1 ] && fits 60; then
    timeout 20 env EMBER_BACKEND=vulkan "$BUILD/tools/ember-info" > "$LOGS/ember-info-vulkan.log" 2>&1
    row "ember-info vulkan" "rc $?: $(grep -m1 -A1 '^  vulkan:0' "$LOGS/ember-info-vulkan.log" | tail -1 | sed 's/^ *name: *//')"
    timeout 90 "$BUILD/tests/device/gpu_bench" vulkan > "$LOGS/gpu-bench-vulkan.log" 2>&1
    row "gpu_bench vulkan" "rc $?; matmul spot error $(val "$LOGS/gpu-bench-vulkan.log" matmul_f32_4096_spot_rel_err)"
    for mm in generic tile64 tile128; do
        fits 40 || break
        EMBER_VULKAN_MATMUL=$mm timeout 60 "$BUILD/tests/device/gpu_bench" vulkan --f32-matmul-only \
            > "$LOGS/gpu-bench-vulkan-$mm.log" 2>&1
        row "vulkan f32 mm, $mm" "rc $?; 1024: $(val "$LOGS/gpu-bench-vulkan-$mm.log" matmul_f32_1024_tflops), 4096: $(val "$LOGS/gpu-bench-vulkan-$mm.log" matmul_f32_4096_tflops) TFLOP/s"
    done
fi

step "test suites on cuda (ctest)"
if ! want cuda; then :
elif fits 150; then
    # The op, gradient, nn/optim/checkpoint suites, the examples and the CUDA tests; not
    # the .on_fake_device/.on_vulkan copies (they pin their backend) nor the loader tests.
    EMBER_BACKEND=cuda timeout 150 ctest --test-dir "$BUILD" -j8 --timeout 90 \
        -R '^(test_|example_)' -E 'on_fake_device|on_vulkan|^test_vulkan|^test_loader|^test_cuda_load|fuzz' \
        --output-on-failure > "$LOGS/ctest-cuda.log" 2>&1
    ctest_rc=$?
    grep -E "Test +#" "$LOGS/ctest-cuda.log" | sed 's/^ *//' | grep -vE "Passed" | head -40
    L="$LOGS/ctest-cuda.log"
    row "op suites (cuda)" "$(summarise "$L" '^test_(elementwise|reduce|linalg|data|views|inplace|creation|errors|dtypes|api|scope|csv|data_loader)$')"
    row "gradient suites (cuda)" "$(summarise "$L" '^test_grad_')"
    row "nn/optim/io (cuda)" "$(summarise "$L" '^test_(nn_|optim|safetensors|checkpoint)')"
    row "examples (cuda)" "$(summarise "$L" '^example_')"
    row "test_cuda_ops" "$(summarise "$L" '^test_cuda_ops')"
    row "test_cuda_vec_lt" "$(summarise "$L" '^test_cuda_vec_lt$')"
    fbops=$(grep -o "op [0-9]* ran on the CPU backend" "$L" | awk '{print $2}' | sort -n -u | tr '\n' ' ')
    row "ops that fell back to CPU" "${fbops:-none}"
    [ "$ctest_rc" -ne 0 ] && { STATUS=1; row "cuda failures" "$(failures "$L")"; }
    [ "$ctest_rc" -eq 124 ] && row "ctest (cuda)" "TIMED OUT after 150 s"
else
    row "test suites (cuda)" "skipped (time)"
fi

step "dataloader (issue [3]: < 5% waiting with 2 workers, on a machine with cores for them)"
# run_dl LABEL ENV... -- ARGS: one ember-bench-dataloader run and its row
run_dl() {
    local label=$1; shift
    local log="$LOGS/bench-dataloader-${label// /_}.log"
    env "$@" > "$log" 2>&1
    local rc=$?
    grep -E "^(run|consumer|loader|training|DATA)" "$log"
    local w2 w0 bound
    w2=$(awk '/^training epoch, num_workers 2/ { print $(NF-2); exit }' "$log")
    w0=$(awk '/^training epoch, num_workers 0/ { print $(NF-2); exit }' "$log")
    bound=$(grep -q '^DATA-BOUND' "$log" && echo "; data-bound")
    row "dataloader $label" "rc $rc; 2 workers ${w2:--}, 0 workers ${w0:--} of the epoch$bound"
}
if want dataloader && fits 60; then
    DL="$BUILD/bench/ember-bench-dataloader"
    # The issue's workload (random samples: --work 1) on both consumers; the CPU consumer
    # also with its pool leaving two cores to the workers; then the 4-round "decode".
    run_dl "cpu work1" timeout 40 "$DL" --workers 0,2 --device cpu --work 1
    run_dl "cpu work1 14thr" EMBER_NUM_THREADS=14 timeout 40 "$DL" --workers 0,2 --device cpu --work 1
    # A deeper ring (8 batches per worker instead of 2) rides out a worker's late wake-up
    # while the consumer's pool keeps every core busy.
    run_dl "cpu work1 prefetch8" timeout 40 "$DL" --workers 0,2 --device cpu --work 1 --prefetch 8
    run_dl "cpu work1 14thr prefetch8" EMBER_NUM_THREADS=14 timeout 40 "$DL" --workers 0,2 --device cpu --work 1 --prefetch 8
    run_dl "cuda work1" timeout 40 "$DL" --workers 0,2 --device cuda --work 1
    fits 30 && run_dl "cuda work4" timeout 40 "$DL" --workers 0,2 --device cuda --work 4
fi

step "vulkan suites"
if ! want vulkan; then :
elif [ "$HAVE_VK" = 1 ] && fits 30; then
    timeout $(( $(left) - 10 )) ctest --test-dir "$BUILD" -j8 --timeout 120 -R 'on_vulkan|^test_vulkan' \
        --output-on-failure > "$LOGS/ctest-vulkan.log" 2>&1
    vk_rc=$?
    row "vulkan suites (validation on)" "$(summarise "$LOGS/ctest-vulkan.log" '.')"
    [ "$vk_rc" -ne 0 ] && row "vulkan failures" "$(failures "$LOGS/ctest-vulkan.log")"
else
    row "vulkan suites" "${VK_WHY:-skipped (time or plugin not built)}"
fi

step "PTX (a compute_80 PTX-only build of the CUDA plugin, JIT-compiled by the driver)"
# The release plugin carries sm_80 and sm_90 SASS plus compute_90 PTX. sm_80 SASS cannot run
# on an H100/H200, so this builds the plugin with compute_80 PTX only: the driver compiles
# the code paths an A100 would run for this GPU, and the CUDA tests run on them.
# (CUDA_FORCE_PTX_JIT=1 is no substitute: it also forces cuBLAS, whose kernels ship as SASS.)
if ! want ptx; then :
elif fits 150; then
    P="$BUILD-ptx80"
    if timeout 60 cmake -S "$ROOT" -B "$P" -DCMAKE_BUILD_TYPE=Release -DEMBER_CUDA=ON -DEMBER_VULKAN=OFF \
            -DCMAKE_CUDA_ARCHITECTURES=80-virtual > "$LOGS/ptx80-configure.log" 2>&1 &&
       timeout 150 cmake --build "$P" -j"$JOBS" --target ember-cpu ember-cuda test_cuda_ops test_cuda_vec_lt \
            > "$LOGS/ptx80-build.log" 2>&1; then
        EMBER_BACKEND=cuda timeout 120 ctest --test-dir "$P" --timeout 110 -V \
            -R '^test_cuda_(ops|vec_lt)$' > "$LOGS/ctest-ptx80.log" 2>&1
        ptx_rc=$?
        row "cuda tests, compute_80 PTX" "$(summarise "$LOGS/ctest-ptx80.log" '.') (rc $ptx_rc) $(grep -m1 -o 'SKIP.*' "$LOGS/ctest-ptx80.log")"
        [ "$ptx_rc" -ne 0 ] && STATUS=1
    else
        row "compute_80 PTX build" "FAILED: $(grep -m3 -E 'error' "$LOGS"/ptx80-*.log | tr '\n' ' ')"
        STATUS=1
    fi
else
    row "PTX" "skipped (time)"
fi

finish
