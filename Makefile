# sigil: two commands.
#   make run    installs missing Debian packages, builds (release) and starts a dev server
#   make test   the same set-up, then every test: unit, fuzz-corpus replay, include check,
#               integration (pytest with real clients), and under ASan+UBSan the unit tests
#               again plus the server's integration tests against the sanitized binary
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
PYTHON     ?= /usr/bin/python3
JOBS       ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps build run test unit integration asan asan-build asan-check fuzz bench clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DSIGIL_WERROR=ON $(CMAKE_FLAGS) > /dev/null
	@cmake --build $(BUILD) -j $(JOBS)

run: build
	$(BUILD)/bin/sigil server --dev

unit: build
	@$(PYTHON) scripts/check-deps.py
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

integration: build
	@SIGIL_BIN_DIR=$(CURDIR)/$(BUILD)/bin $(PYTHON) -m pytest -q tests/integration

# -g1: line tables only, enough for file:line in sanitizer reports, and much less to compile
# and link than full debug information.
asan-build: deps
	@cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-g1 -DSIGIL_SANITIZE=ON \
	  -DSIGIL_BUILD_BENCH=OFF -DSIGIL_WERROR=ON $(CMAKE_FLAGS) > /dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

# The sanitized tests, against an existing ASan build.
asan-check:
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS)
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  SIGIL_BIN_DIR=$(CURDIR)/$(ASAN_BUILD)/bin $(PYTHON) -m pytest -q tests/integration/test_server.py \
	  tests/integration/test_kubectl.py tests/integration/test_watch.py tests/integration/test_python_client.py \
	  tests/integration/test_auth.py tests/integration/test_rbac.py tests/integration/test_audit.py \
	  tests/integration/test_history.py tests/integration/test_regressions.py tests/integration/test_shutdown_watches.py \
	  tests/integration/test_vault_policies.py tests/integration/test_vault_tokens.py tests/integration/test_vault_userpass.py \
	  tests/integration/test_vault_kubernetes_auth.py tests/integration/test_vault_approle.py tests/integration/test_vault_seal.py \
	  tests/integration/test_vault_mounts.py tests/integration/test_vault_end_to_end.py \
	  tests/integration/test_vault_kv2.py tests/integration/test_vault_transit.py tests/integration/test_vault_kubernetes_mount.py tests/integration/test_vault_leases.py \
	  tests/integration/test_vault_database.py tests/integration/test_secret_rotation.py tests/integration/test_hostile.py tests/integration/test_kms.py tests/integration/test_agent.py tests/integration/test_csi_provider.py \
	  --deselect tests/integration/test_hostile.py::test_idle_sockets_cost_little_and_memory_comes_back \
	  --deselect tests/integration/test_hostile.py::test_throttled_refusals_cannot_hold_every_connection \
	  --deselect tests/integration/test_agent.py::test_agent_and_server_restarts

asan: asan-build
	@$(MAKE) --no-print-directory asan-check

# Every test. The sanitized build compiles at the lowest CPU priority while the release
# integration tests run (they mostly wait on servers and clients, so it takes only idle CPU),
# then the sanitized tests run; its compiler output is in $(ASAN_BUILD)/build.log.
test: unit
	@mkdir -p $(ASAN_BUILD); \
	( nice -n 19 $(MAKE) --no-print-directory asan-build > $(ASAN_BUILD)/build.log 2>&1 ) & asan=$$!; \
	rc=0; $(MAKE) --no-print-directory integration || rc=$$?; \
	if ! wait $$asan; then echo "the ASan+UBSan build failed:"; tail -40 $(ASAN_BUILD)/build.log; exit 1; fi; \
	if [ $$rc -ne 0 ]; then exit $$rc; fi; \
	$(MAKE) --no-print-directory asan-check

# libFuzzer with clang 14: FUZZ_SECONDS per target (default 60).
FUZZ_SECONDS ?= 60
fuzz: deps
	@CC=clang-14 CXX=clang++-14 cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSIGIL_FUZZ=ON \
	  -DSIGIL_BUILD_BENCH=OFF > /dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS)
	@for t in $(FUZZ_BUILD)/fuzz/*_fuzz; do \
	  name=$$(basename $$t); mkdir -p $(FUZZ_BUILD)/corpus/$$name; \
	  echo "== $$name ($(FUZZ_SECONDS)s)"; \
	  $$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $(FUZZ_BUILD)/corpus/$$name fuzz/corpus/$$name || exit 1; \
	done

bench: build
	@$(BUILD)/bench/sigil_bench --benchmark_min_time=0.5

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
