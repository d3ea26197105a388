# respool - top-level entry points. Every target installs what it needs first (scripts/deps.sh).
#
#   make run     build, create a volume under ./var and start respool in the foreground
#   make test    build with ASan+UBSan and run every test (ctest)
#   make bench   release build and the benchmarks in bench/
#   make soak    long fault and crash runs
#   make build   release build only (build/)

BUILD      ?= build
TEST_BUILD ?= build-asan
JOBS       ?= $(shell nproc)

.PHONY: all build run test bench soak clean deps-build

all: build

build:
	@scripts/deps.sh build
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRP_SANITIZE=OFF >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

run:
	@scripts/deps.sh run build
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRP_SANITIZE=OFF >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)
	@scripts/run.sh $(BUILD)

test:
	@scripts/deps.sh test
	@# the release tree too: -O2 enables warnings (-Werror) that a Debug build never sees
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRP_SANITIZE=OFF >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)
	@cmake -S . -B $(TEST_BUILD) -DCMAKE_BUILD_TYPE=Debug -DRP_SANITIZE=ON >/dev/null
	@cmake --build $(TEST_BUILD) -j $(JOBS)
	@scripts/test.sh $(TEST_BUILD)

soak:
	@scripts/deps.sh soak
	@cmake -S . -B $(TEST_BUILD) -DCMAKE_BUILD_TYPE=Debug -DRP_SANITIZE=ON >/dev/null
	@cmake --build $(TEST_BUILD) -j $(JOBS)
	@RP_SOAK=1 scripts/test.sh $(TEST_BUILD) -L soak

bench:
	@scripts/deps.sh bench
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRP_SANITIZE=OFF >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)
	@bench/run-all.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(TEST_BUILD)
