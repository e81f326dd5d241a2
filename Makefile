# Ember — front door. On a fresh Debian 12 machine (as root, or with sudo):
#   make deps    install missing Debian packages (build tools, OpenBLAS, Vulkan loader/lavapipe/glslc)
#   make build   configure build/ (Release) and build everything
#   make run     build and run the walkthrough demo (build/examples/ember-demo)
#   make test    build and run the test suite (ctest)
#   make asan    build build-asan/ with ASan+UBSan (Debug) and run the test suite there
#   make fuzz    fuzz the checkpoint loader with libFuzzer for FUZZ_TIME seconds (default 60)
#   make check   test + asan + fuzz: what CI (.ci/run) runs
#   make bench   build and run the benchmarks: core ops, the MLP training step, the
#                DataLoader, then ember-bench all (report in build/bench-report.*)
#                (BENCH_ARGS="--quick --pytorch" adds PyTorch's figures)
#   make conformance  ember-conformance on BACKEND (default cpu; a name or a plugin path)
#   make info    build and show backends and devices (build/tools/ember-info)
#   make clean   remove build/ and build-asan/

BUILD_DIR   ?= build
ASAN_DIR    ?= build-asan
JOBS        ?= $(shell nproc 2>/dev/null || echo 2)
CTEST_JOBS  ?= 2
CMAKE       ?= cmake
CTEST       ?= ctest
CMAKE_ARGS  ?=
BENCH_ARGS  ?=

export DEBIAN_FRONTEND := noninteractive

.PHONY: all deps configure build run test asan check bench conformance info clean help

all: build

help:
	@sed -n '2,14s/^# \{0,1\}//p' $(firstword $(MAKEFILE_LIST))

deps:
	@scripts/deps.sh

configure: deps
	$(CMAKE) -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release $(CMAKE_ARGS)

build: configure
	$(CMAKE) --build $(BUILD_DIR) -j$(JOBS)

run: build
	$(BUILD_DIR)/examples/ember-demo

test: build
	$(CTEST) --test-dir $(BUILD_DIR) --output-on-failure -j$(CTEST_JOBS)

asan: deps
	$(CMAKE) -S . -B $(ASAN_DIR) -DEMBER_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug $(CMAKE_ARGS)
	$(CMAKE) --build $(ASAN_DIR) -j$(JOBS)
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  $(CTEST) --test-dir $(ASAN_DIR) --output-on-failure -j$(CTEST_JOBS)

check: test asan fuzz

bench: build
	$(BUILD_DIR)/bench/ember-bench-core $(BENCH_ARGS)
	$(BUILD_DIR)/bench/ember-bench-mlp $(filter --quick --pytorch,$(BENCH_ARGS))
	$(BUILD_DIR)/bench/ember-bench-dataloader
	$(BUILD_DIR)/bench/ember-bench all $(filter --pytorch,$(BENCH_ARGS)) --json $(BUILD_DIR)/bench-report.json --markdown $(BUILD_DIR)/bench-report.md --svg $(BUILD_DIR)/bench

conformance: build
	$(BUILD_DIR)/bench/ember-conformance --backend $(or $(BACKEND),cpu)

info: build
	$(BUILD_DIR)/tools/ember-info

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR)

# make fuzz        build the safetensors fuzzer (tests/fuzz/) with clang + libFuzzer + ASan +
#                  UBSan in $(FUZZ_DIR)/ and run it FUZZ_TIME seconds on tests/fuzz/corpus (new
#                  inputs go to $(FUZZ_DIR)/corpus, crashes to $(FUZZ_DIR)/crash-*; FUZZ_ARGS adds
#                  libFuzzer flags, e.g. -jobs=4). The library and plugin are instrumented too,
#                  with the shared ASan runtime (the plugin links with -z defs); libFuzzer's
#                  libstdc++ loads before that runtime, which is harmless, hence
#                  verify_asan_link_order=0.
# make clean-fuzz  remove $(FUZZ_DIR)/ (make clean does too)
.PHONY: fuzz clean-fuzz
FUZZ_DIR    ?= build-fuzz
FUZZ_TIME   ?= 60
FUZZ_ARGS   ?=

fuzz:
	@scripts/deps.sh clang libclang-rt-dev
	rt=$$(dirname "$$(clang -print-file-name=libclang_rt.asan-$$(uname -m).so)") && \
	$(CMAKE) -S . -B $(FUZZ_DIR) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DEMBER_SANITIZE=ON -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link \
	  -DCMAKE_SHARED_LINKER_FLAGS=-shared-libasan -DCMAKE_MODULE_LINKER_FLAGS=-shared-libasan \
	  "-DCMAKE_EXE_LINKER_FLAGS=-shared-libasan -Wl,-rpath,$$rt" $(CMAKE_ARGS)
	$(CMAKE) --build $(FUZZ_DIR) -j$(JOBS) --target fuzz_safetensors ember-cpu
	mkdir -p $(FUZZ_DIR)/corpus
	ASAN_OPTIONS=detect_leaks=1:verify_asan_link_order=0 UBSAN_OPTIONS=print_stacktrace=1 \
	  $(FUZZ_DIR)/tests/fuzz/fuzz_safetensors -max_total_time=$(FUZZ_TIME) -max_len=4096 \
	  -dict=tests/fuzz/safetensors.dict -artifact_prefix=$(FUZZ_DIR)/ $(FUZZ_ARGS) \
	  $(FUZZ_DIR)/corpus tests/fuzz/corpus

clean-fuzz:
	rm -rf $(FUZZ_DIR)
clean: clean-fuzz
