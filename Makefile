# Quick start: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV ?= .venv
# A folder with a prebuilt mmcv wheel (CI passes ../shared/wheels); without
# a wheel there for this Python and torch, mmcv 2.1.0 is built from its
# source (tools/misc/build_mmcv.py: 10-30 minutes on 2 cores) and kept in
# work_dirs/mmcv_wheels.
MMCV_WHEELS ?=
BIN := $(VENV)/bin
STAMP := $(VENV)/.mmseg_ssanet-env
DEMO_CONFIG ?= configs/demo/ssanet_mobilenetv2_cpu_synthetic-cityscapes.py
DEMO_DIR ?= work_dirs/demo
DEMO_DATA ?= data/synthetic_cityscapes
# Training seed, and an SNL backend to force (empty: the default, cpp on CPU)
DEMO_SEED ?= 0
DEMO_BACKEND ?=
DEMO_OPTIONS = $(if $(DEMO_BACKEND),model.decode_head.snl_backend=$(DEMO_BACKEND))
PYTEST_ARGS ?=

.PHONY: env test test-quick test-triton-variants triton-contract-atomic \
	triton-contract-sorted lint format fuzz demo clean browser browser-if-possible kernel-check \
	device-rehearsal compat-check docs-pictures cue-pictures
env: $(STAMP)

$(STAMP): tools/setup_env.sh requirements/*.txt setup.cfg setup.py pyproject.toml \
		mmseg_ssanet/ops/csrc/*.cpp
	VENV=$(VENV) PYTHON=$(PYTHON) MMCV_WHEELS=$(MMCV_WHEELS) bash tools/setup_env.sh
	touch $@

test: $(STAMP)
	@$(MAKE) --no-print-directory browser-if-possible
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The Triton backend's operator contract (values, float64 gradients, NaN
# and inf, off-map points, the fuzz; under the interpreter here) once more
# with the forward and backward variants the defaults (halo, halo) do not
# take: each forward and each backward is held to it at least once.
TRITON_CONTRACT = tests/test_ops.py tests/test_ops_fuzz.py \
	tests/test_sampling_geometry.py
# The two runs in parallel (one interpreter process each, two cores), each
# one's output printed when it ends.
test-triton-variants: $(STAMP)
	@$(MAKE) --no-print-directory -j2 --output-sync=target \
		triton-contract-atomic triton-contract-sorted
triton-contract-atomic:
	SSANET_TRITON_BACKWARD=atomic $(BIN)/python -m pytest -p no:cacheprovider \
		-k triton $(TRITON_CONTRACT) $(PYTEST_ARGS)
triton-contract-sorted:
	SSANET_TRITON_FORWARD=gather SSANET_TRITON_BACKWARD=sorted \
		$(BIN)/python -m pytest -p no:cacheprovider \
		-k triton $(TRITON_CONTRACT) $(PYTEST_ARGS)

# flake8, isort and yapf (settings in setup.cfg, versions in
# requirements/lint.txt) over every tracked Python file; `make format`
# applies isort's and yapf's changes.
PY_FILES = $(shell git ls-files '*.py')
lint: $(STAMP)
	@echo "flake8, isort, yapf: $(words $(PY_FILES)) files"
	@$(BIN)/flake8 $(PY_FILES)
	@$(BIN)/isort --check-only --diff $(PY_FILES)
	@$(BIN)/yapf --diff $(PY_FILES)

format: $(STAMP)
	@$(BIN)/isort -q $(PY_FILES)
	@$(BIN)/yapf -i $(PY_FILES)

# The unit tests of the operator, geometry, model and configs, without
# training runs, mim processes and the Triton interpreter (docs/testing.md
# says which tests a change needs).
QUICK_TESTS = tests/test_ops.py tests/test_sampling_geometry.py \
	tests/test_backend_csr.py tests/test_backend_reference.py \
	tests/test_features.py tests/test_snl_block.py tests/test_snl_head.py \
	tests/test_configs.py tests/test_layers.py
test-quick: $(STAMP)
	$(BIN)/python -m pytest -m "not slow and not triton" $(QUICK_TESTS) \
		$(PYTEST_ARGS)

# The differential fuzz exploring: FUZZ_EXAMPLES per CPU backend, a tenth
# for Triton under the interpreter, a fresh seed (printed; FUZZ_SEED=N
# replays a run), examples kept in work_dirs/fuzz_db (docs/testing.md).
FUZZ_EXAMPLES ?= 2000
FUZZ_SEED ?=
fuzz: $(STAMP)
	@seed=$${FUZZ_SEED:-$$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}; \
	echo "fuzz seed $$seed (replay: make fuzz FUZZ_SEED=$$seed)"; \
	SSANET_FUZZ_EXPLORE=work_dirs/fuzz_db \
	SSANET_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest \
		tests/test_ops_fuzz.py -k 'test_fuzz_' -p no:cacheprovider \
		--hypothesis-seed=$$seed --hypothesis-show-statistics $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/python tools/misc/generate_data.py cityscapes $(DEMO_DATA) \
		--num-train 64 --num-val 16 --size 128x256 --seed 0
	$(BIN)/mim train mmseg $(DEMO_CONFIG) --gpus 0 --work-dir $(DEMO_DIR) \
		--cfg-options train_dataloader.dataset.data_root=$(DEMO_DATA) \
		val_dataloader.dataset.data_root=$(DEMO_DATA) \
		test_dataloader.dataset.data_root=$(DEMO_DATA) \
		randomness.seed=$(DEMO_SEED) $(DEMO_OPTIONS)
	$(BIN)/mim test mmseg $(DEMO_CONFIG) --gpus 0 --work-dir $(DEMO_DIR) \
		--checkpoint $$(cat $(DEMO_DIR)/last_checkpoint) \
		--cfg-options test_dataloader.dataset.data_root=$(DEMO_DATA) \
		$(DEMO_OPTIONS)

# The fused kernel built for each ISA alone, with ASan + UBSan, running the
# operator tests and the differential fuzz (.dev_scripts/check_kernel.py).
kernel-check: $(STAMP)
	$(BIN)/python .dev_scripts/check_kernel.py

# The pictures the docs show (the docs' commands write to work_dirs/).
docs-pictures: $(STAMP)
	@$(MAKE) --no-print-directory browser-if-possible  # the explorer's screenshot
	test -f $(DEMO_DIR)/iter_400.pth || $(MAKE) --no-print-directory demo
	PYTHON=$(BIN)/python bash docs/regenerate_pictures.sh

cue-pictures: $(STAMP)
	PYTHON=$(BIN)/python bash projects/cue_scenes/docs/regenerate_pictures.sh

# The plugin on the stacks users have (torch 2.1 with mmcv's official-style
# wheel, numpy 1.x; Python 3.9; the newest torch), each in a throwaway venv
# (.dev_scripts/compat_check.py; docs/installation.md).
# STACKS="canonical newest" takes some of them; COMPAT_OUT is where
# summary.md and the logs go.
COMPAT_OUT ?= work_dirs/compat_check
compat-check:
	python3 .dev_scripts/compat_check.py $(COMPAT_OUT)

# .dev_scripts/device_check.py (the one command for a GPU machine) in its
# CPU mode on a bare stack: a throwaway venv without mmcv/mmengine/mmseg.
device-rehearsal:
	python3 .dev_scripts/rehearse_device_check.py work_dirs/device_check_cpu

# Chromium for the explorer's browser test, where this user can install
# it (root and apt-get). Elsewhere that one test is skipped and says how to
# install it; under CI=true it fails instead.
browser-if-possible:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		$(MAKE) --no-print-directory browser || \
		echo "make test: installing Chromium failed; the explorer's browser test will be skipped"; \
	else \
		echo "make test: Chromium is not installed and installing it needs root and apt-get; the explorer's browser test will be skipped (sudo make browser installs it)"; \
	fi

# The explorer test's browser (Debian's packages; needs root).
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then \
		echo "chromium and chromedriver present"; \
	else \
		apt-get update -q && apt-get install -y -q chromium chromium-driver; \
	fi

clean:
	rm -rf $(DEMO_DIR) $(DEMO_DATA)
