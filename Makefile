# deepgrad: every target sets up what it needs in .venv (created with python3 -m venv).
# The set-up is re-run only when pyproject.toml changes: its stamp file is named by the
# file's content hash, so an edit (or a checkout that changes it) triggers a reinstall.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
# torch is the tests' oracle, pinned to exactly this spec: it takes the local CPU wheel; any
# other spec pulls gigabytes of CUDA packages.
TORCH  := torch==2.13.0
BENCH_ARGS ?=

HASH       := $(shell (sha256sum pyproject.toml 2>/dev/null || shasum -a 256 pyproject.toml) | cut -c1-16)
BASE_STAMP := $(VENV)/.stamp-base-$(HASH)
TEST_STAMP := $(VENV)/.stamp-test-$(HASH)

.PHONY: guide test bench lint clean

# The main job: every interview-guide topic in quick mode, with the HTML report in reports/guide.
guide: $(BASE_STAMP)
	$(VENV)/bin/deepgrad guide --all --quick --report reports/guide

test: $(TEST_STAMP)
	$(PY) -m pytest -q

# make bench BENCH_ARGS='--quick' passes options to python -m benchmarks
bench: $(TEST_STAMP)
	$(PY) -m benchmarks $(BENCH_ARGS)

lint: $(TEST_STAMP)
	$(PIP) install --quiet ruff
	$(PY) -m ruff check deepgrad tests benchmarks

$(PY):
	$(PYTHON) -m venv $(VENV)

$(BASE_STAMP): | $(PY)
	rm -f $(VENV)/.stamp-base-*
	$(PIP) install --quiet -e .
	touch $@

# .[test] is a superset of the base install, so it satisfies the base stamp too.
$(TEST_STAMP): | $(PY)
	rm -f $(VENV)/.stamp-base-* $(VENV)/.stamp-test-*
	$(PIP) install --quiet -e '.[test]' '$(TORCH)'
	touch $@ $(BASE_STAMP)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis .ruff_cache
