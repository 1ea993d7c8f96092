PY := .venv/bin/python
PIP := .venv/bin/pip

.PHONY: setup test demo bench clean

.venv/.installed: pyproject.toml
	python3 -m venv .venv
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e ".[all,dev]"
	touch .venv/.installed

setup: .venv/.installed

test: .venv/.installed
	$(PY) -m pytest src/whence tests -q

demo: .venv/.installed
	$(PY) -m whence.demo

bench: .venv/.installed
	$(PY) benchmarks/run.py

clean:
	rm -rf .venv build dist .pytest_cache benchmarks/results
