# skiff: the two commands a fresh machine needs are `make run` and
# `make test`; both install missing Debian packages first.
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS ?= $(shell nproc)
CTEST_ARGS ?= --output-on-failure

.PHONY: all deps build asan run test test-build test-asan fuzz bench format format-check clean install deb

all: build

deps:
	@./scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSKIFF_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

# Runs examples/hello_world.py; `skiff run` starts a local skiffd when none
# answers (it keeps running afterwards: `./build/skiff daemon stop`).
run: build
	./$(BUILD)/skiff run examples/hello_world.py

# Every test: unit, fuzz-corpus replay and end-to-end, first on the normal
# build, then on the ASan+UBSan build.
test: test-build test-asan

test-build: build
	cd $(BUILD) && ctest $(CTEST_ARGS)

test-asan: asan
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest $(CTEST_ARGS)

# Runs each fuzz target with libFuzzer for FUZZ_SECONDS (default 60). New
# inputs go to $(FUZZ_BUILD)/corpus/; copy a crash reproducer into
# tests/fuzz/corpus/ once it is fixed.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := $(notdir $(basename $(wildcard tests/fuzz/fuzz_*.c)))
fuzz: deps
	@CC=clang cmake -S . -B $(FUZZ_BUILD) -DSKIFF_FUZZ=ON >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS) --target $(FUZZ_TARGETS)
	@for name in $(FUZZ_TARGETS); do \
	  t=$(FUZZ_BUILD)/$$name; \
	  echo "== $$name"; \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$name; \
	  $$t -max_total_time=$(FUZZ_SECONDS) $(FUZZ_BUILD)/corpus/$$name \
	    tests/fuzz/corpus/$$name || exit 1; \
	done

bench: build
	./bench/run

format:
	clang-format -i $$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c')

format-check:
	clang-format --dry-run -Werror $$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c')

install: build
	cmake --install $(BUILD)

# The Debian package (skiff_VERSION_ARCH.deb in $(BUILD)/deb): scripts/build-deb.sh.
deb: build
	@scripts/build-deb.sh $(BUILD) $(BUILD)/deb

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
