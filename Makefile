# Makefile - the project's entry points (the README's quick start uses two):
#
#   make run          install missing Debian packages, build into build/, run the mesh
#   make test         install missing packages (test tools, npm packages, chromium too),
#                     build into build/, run every ctest test
#   make test-asan    the same with ASan+UBSan in build-asan/
#   make fuzz-smoke   build the libFuzzer targets with clang and run each briefly
#   make format-check clang-format --dry-run -Werror on every C file
#   make format       clang-format -i on every C file
#   make bench        build Release and run the benchmark (bench/run.sh)
#   make clean        remove build directories and run/
#
# CMake does the real work; this file only fixes directories and flags.

SHELL := /bin/bash
BUILD ?= build
BUILD_ASAN ?= build-asan
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=
CTEST_ARGS ?=

# Every C file we own (generated and third-party trees excluded).
C_SOURCES = $(shell find include lib services tests bench fuzz utils -type f \( -name '*.c' -o -name '*.h' \) \
                      -not -path 'fuzz/corpus/*' -not -path 'fuzz/out/*' 2>/dev/null | sort)

.PHONY: all deps deps-test build run test test-asan fuzz-smoke format-check format bench clean

all: build

deps:
	@bash scripts/deps.sh

deps-test:
	@bash scripts/deps.sh --test

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_ARGS)
	cmake --build $(BUILD) -j$(JOBS)

run: build
	bash scripts/run.sh $(CURDIR)/$(BUILD)/bin

test: build deps-test
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS) $(CTEST_ARGS)

test-asan: deps deps-test
	cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DMESH_SANITIZE=ON $(CMAKE_ARGS)
	cmake --build $(BUILD_ASAN) -j$(JOBS)
	cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1 \
	    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	    ctest --output-on-failure -j$(JOBS) $(CTEST_ARGS)

fuzz-smoke: deps
	bash scripts/fuzz-smoke.sh

format-check:
	@clang-format --dry-run -Werror $(C_SOURCES)
	@echo "format-check: $(words $(C_SOURCES)) files formatted"

format:
	clang-format -i $(C_SOURCES)

bench: deps
	bash bench/run.sh

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) build-bench run
