PY := .venv/bin/python
PIP := .venv/bin/pip

.PHONY: setup test demo bench clean

.venv/.installed: pyproject.toml
	python3 -m venv .venv
	$(PIP) install --quiet --upgrade pip
	# torch: the CPU build (a plain "torch" requirement would pull several GB of CUDA packages); the project
	# works without it (the torch tests skip), so a machine that cannot install it still builds
	$(PIP) install --quiet "torch==2.13.0" || echo "torch 2.13.0 (CPU) not installable here: torch tests will skip"
	$(PIP) install --quiet -e ".[all,dev]"
	touch .venv/.installed

setup: .venv/.installed

test: .venv/.installed
	$(PY) -m pytest src/whence tests -q

demo: .venv/.installed
	$(PY) -m whence.demo

bench: .venv/.installed
	# the peers measured beside whence: traker needs torch (installed above when possible)
	$(PY) -c "import torch" 2>/dev/null && $(PIP) install --quiet "traker>=0.3,<0.4" || true
	$(PY) benchmarks/run.py

clean:
	rm -rf .venv build dist .pytest_cache benchmarks/results
