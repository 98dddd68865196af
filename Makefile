# Set-up and the two everyday commands. Every target creates .venv on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# torch is pinned: 2.13.0 is the CPU build on the machines' local disk; a loose
# requirement would download a several-GB CUDA build.
TORCH := torch==2.13.0

.PHONY: demo test test-all venv bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/diffsim demo --out out/demo

# The everyday suite (about 7 minutes on 2 cores): every gradient path against finite
# differences, every physics reference on small scenes. Two pytest workers (pytest-xdist),
# one test file per worker at a time: compiling kernels is single-threaded and dominates.
# Slow validations are marked `slow` and run by test-all.
test: $(STAMP)
	$(BIN)/python -m pytest -q -x -n 2 --dist loadfile -m "not slow" tests

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile tests

bench: $(STAMP)
	$(BIN)/python benchmarks/mass_spring.py

clean:
	rm -rf $(VENV) out
