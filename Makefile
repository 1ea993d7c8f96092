PY := .venv/bin/python
PIP := .venv/bin/pip

# the oldest supported versions (constraints-oldest.txt) on the oldest supported Python
# (the first interpreter that really is 3.10: on PATH, from pyenv, or Debian's; or set PYTHON_COMPAT=...)
PYTHON_COMPAT ?= $(shell for p in python3.10 $$HOME/.pyenv/versions/3.10*/bin/python3.10 /usr/bin/python3.10; do \
	"$$p" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null && echo "$$p" && break; done)
CPY := .venv-compat/bin/python

.PHONY: setup test test-compat compat-python demo bench clean

.venv/.installed: pyproject.toml
	python3 -m venv .venv
	$(PIP) install --quiet --upgrade pip
	# torch: the CPU build (a plain "torch" requirement would pull several GB of CUDA packages); the project
	# works without it (the torch tests skip), so a machine that cannot install it still builds
	$(PIP) install --quiet "torch==2.13.0" || echo "torch 2.13.0 (CPU) not installable here: torch tests will skip"
	$(PIP) install --quiet -e ".[all,dev]"
	touch .venv/.installed

setup: .venv/.installed

# the code, its doctests, the tests, and every Python block of README.md and docs/*.md (conftest.py)
test: .venv/.installed
	@[ -x /usr/bin/chromium ] || echo "make test: NOTE: no Chromium at /usr/bin/chromium: the explorer's browser tests will be skipped (apt-get install chromium)"
	$(PY) -m pytest src/whence tests README.md docs -q

.venv-compat/.installed: pyproject.toml constraints-oldest.txt
	@[ -n "$(PYTHON_COMPAT)" ] || { echo "make test-compat: no Python 3.10 found (pyenv install 3.10, or apt-get \
	install python3.10, or PYTHON_COMPAT=/path/to/python3.10)" >&2; exit 1; }
	$(PYTHON_COMPAT) -m venv .venv-compat
	$(CPY) -m pip install --quiet --upgrade pip
	# no torch here: the suite must also run (and skip what needs it) without it
	$(CPY) -m pip install --quiet -c constraints-oldest.txt -e ".[pandas,sklearn,store,web,dask,dev]"
	touch .venv-compat/.installed

# the suite on the oldest supported versions, minus the slow property tests and the browser tests; module
# doctests are left out because numpy 1.x prints scalars differently (1.5, not np.float64(1.5))
test-compat: .venv-compat/.installed
	WHENCE_REQUIRE_BROWSER= WHENCE_ORACLE_SCALE=0.25 $(CPY) -m pytest src/whence tests README.md docs -q -m "not slow" \
		--ignore=tests/test_web_browser.py -p no:cacheprovider -o addopts="-ra --strict-markers --import-mode=importlib"

# the interpreter test-compat uses (empty when none is found)
compat-python:
	@echo "$(PYTHON_COMPAT)"

demo: .venv/.installed
	$(PY) -m whence.demo

bench: .venv/.installed
	# the peers measured beside whence: traker needs torch (installed above when possible)
	$(PY) -c "import torch" 2>/dev/null && $(PIP) install --quiet "traker>=0.3,<0.4" || true
	$(PY) benchmarks/run.py

clean:
	rm -rf .venv .venv-compat build dist .pytest_cache benchmarks/results
