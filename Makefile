# Two commands for a newcomer:
#   make demo   set up .venv (torch-free: the offline models, QA and scoring) and transcribe the example calls into out/
#   make test   set up .venv with every extra (CPU torch first) and run the whole test suite, then the
#               transformers-native Qwen3-ASR (-hf) tests in .venv-hf (qwen-asr pins transformers 4.57, the -hf
#               layout needs transformers >= 5.13: they cannot share one environment)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
# torch must come from the CPU build before anything that depends on it, or pip pulls several GB of CUDA packages.
TORCH ?= torch==2.13.0
VENV_HF ?= .venv-hf
PY_HF := $(VENV_HF)/bin/python
PIP_HF := $(PY_HF) -m pip --disable-pip-version-check
# What runs in .venv-hf; in .venv the -hf tests skip, in .venv-hf the qwen-asr ones do.
HF_TESTS ?= tests/engines_qwen/test_engine_qwen3_hf.py tests/engines_qwen/test_qwen3_helpers.py \
	tests/engines_qwen/test_qwen3_scripts.py

.PHONY: demo test lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(PY_HF):
	$(PYTHON) -m venv $(VENV_HF)
	$(PIP_HF) install -q --upgrade pip

$(VENV_HF)/.test-ready: $(PY_HF) pyproject.toml
	$(PIP_HF) install -q "$(TORCH)"
	$(PIP_HF) install -q -e ".[qwen-hf,test]"
	touch $@

$(VENV)/.demo-ready: $(PY) pyproject.toml
	$(PIP) install -q -e ".[offline,qa,eval,server]"
	touch $@

$(VENV)/.test-ready: $(PY) pyproject.toml
	$(PIP) install -q "$(TORCH)"
	$(PIP) install -q -e ".[offline,eval,qa,qwen,diarize,server,ray,test]"
	touch $@

demo: $(VENV)/.demo-ready
	$(VENV)/bin/callscribe transcribe examples/calls -o out --format all
	@echo
	@echo "Transcripts are in out/ (one .json/.txt/.srt/.vtt/.tsv/.rttm per call); e.g.:  cat out/*.txt"

test: $(VENV)/.test-ready $(VENV_HF)/.test-ready
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(PY) -m pytest -q
	$(PY_HF) -m pytest -q $(HF_TESTS)

lint: $(VENV)/.test-ready
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/ruff format --check src tests benchmarks scripts

clean:
	rm -rf $(VENV) $(VENV_HF) out .pytest_cache .ruff_cache
