# Every target creates .venv on demand; stamp files make reruns skip the install.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
RUN    := $(VENV)/.stamp-runtime
DEV    := $(VENV)/.stamp-dev

.PHONY: train test lab tensorboard generate bench data lint clean help

help:
	@echo "make train        prepare Tiny Shakespeare, train the lite GPT on the CPU, print a sample"
	@echo "make test         lint + the whole pytest suite (notebooks included)"
	@echo "make lab          open the notebooks in JupyterLab"
	@echo "make tensorboard  TensorBoard on logs/"
	@echo "make generate     sample from the shipped model"
	@echo "make bench        run the benchmarks in bench/"
	@echo "make clean        remove caches, logs and generated data (keeps .venv and shipped models)"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(RUN): requirements.txt | $(PY)
	$(PY) -m pip install -q -r requirements.txt
	@touch $@

$(DEV): requirements-dev.txt $(RUN)
	$(PY) -m pip install -q -r requirements-dev.txt
	@touch $@

data: $(RUN)
	$(PY) shakespeare/tokenizer.py

train: data
	$(PY) shakespeare/train.py --config lite --run_name lite
	$(PY) shakespeare/generate.py --model shakespeare/models/lite.pt --num_tokens 500

generate: $(RUN)
	$(PY) shakespeare/generate.py

lint: $(DEV)
	$(PY) -m ruff check .

test: $(DEV)
	$(PY) -m ruff check .
	$(PY) -m pytest

lab: $(RUN)
	$(VENV)/bin/jupyter lab

tensorboard: $(RUN)
	$(VENV)/bin/tensorboard --logdir logs

bench: $(DEV) data
	$(PY) bench/train_bench.py
	$(PY) bench/generate_bench.py
	$(PY) bench/gmm_bench.py

clean:
	rm -rf .pytest_cache .ruff_cache logs/*/ shakespeare/data/*.bin shakespeare/data/vocab.json
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +
