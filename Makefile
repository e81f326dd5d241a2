# Ember — front door. On a fresh Debian 12 machine (as root, or with sudo):
#   make deps    install missing Debian packages (build-essential cmake libopenblas-dev pkg-config)
#   make build   configure build/ (Release) and build everything
#   make run     build and run the walkthrough demo (build/examples/ember-demo)
#   make test    build and run the test suite (ctest)
#   make asan    build build-asan/ with ASan+UBSan (Debug) and run the test suite there
#   make check   test + asan: what CI (.ci/run) runs
#   make bench   build and run the core benchmark (BENCH_ARGS="--quick --pytorch --json f")
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

.PHONY: all deps configure build run test asan check bench info clean help

all: build

help:
	@sed -n '2,12s/^# \{0,1\}//p' $(firstword $(MAKEFILE_LIST))

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

check: test asan

bench: build
	$(BUILD_DIR)/bench/ember-bench-core $(BENCH_ARGS)

info: build
	$(BUILD_DIR)/tools/ember-info

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR)
