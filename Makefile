# Two commands for a newcomer:
#   make demo   set up .venv (torch-free: the offline models, QA and scoring) and transcribe the example calls into out/
#   make test   set up .venv with every extra (CPU torch first) and run the whole test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
# torch must come from the CPU build before anything that depends on it, or pip pulls several GB of CUDA packages.
TORCH ?= torch==2.13.0

.PHONY: demo test lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.demo-ready: $(PY) pyproject.toml
	$(PIP) install -q -e ".[offline,qa,eval]"
	touch $@

$(VENV)/.test-ready: $(PY) pyproject.toml
	$(PIP) install -q "$(TORCH)"
	$(PIP) install -q -e ".[offline,eval,qa,qwen,diarize,test]"
	touch $@

demo: $(VENV)/.demo-ready
	$(VENV)/bin/callscribe transcribe examples/calls -o out --format all
	@echo
	@echo "Transcripts are in out/ (one .json/.txt/.srt/.vtt/.tsv/.rttm per call); e.g.:  cat out/*.txt"

test: $(VENV)/.test-ready
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(PY) -m pytest -q

lint: $(VENV)/.test-ready
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/ruff format --check src tests benchmarks scripts

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
