# The front door. Every target installs what it needs first (and is quick when it already is).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
IAC    := .tools/checkov

.PHONY: run test lint package lock bench bench-smoke deps clean

deps: $(VENV)/.installed node_modules/.installed

# The installs say one line each and nothing more unless something goes wrong (pip --quiet
# still prints warnings and errors; npm prints its errors on stderr and its "added N packages"
# summary, at any loglevel but silent, on stdout), so README.md can say what a first run adds.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	@echo "installing Python packages into $(VENV) (requirements-dev.txt)"
	@$(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

$(IAC)/.installed: requirements-iac.txt  ## checkov, apart: it pins its own shared libraries
	@echo "installing checkov into $(IAC) (requirements-iac.txt)"
	@$(PYTHON) -m venv $(IAC)
	@$(IAC)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-iac.txt
	@touch $@

node_modules/.installed: package.json package-lock.json
	@echo "installing Azurite into node_modules (package-lock.json)"
	@npm ci --no-audit --no-fund --loglevel=error >/dev/null
	@touch $@

run: deps  ## Azurite + demo data + the local host on 127.0.0.1:7071 (prints README's block)
	@$(PY) -m tools.run_local

lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: deps $(IAC)/.installed lint  ## every test (pytest exits non-zero when no test ran)
	$(PY) -m pytest

package: $(VENV)/.installed  ## dist/audit-api.zip, what both pipelines and azd deploy
	$(PY) -m tools.package

lock: $(VENV)/.installed  ## requirements.lock from requirements.txt, for Azure's image
	$(PY) -m tools.lock

bench: deps  ## full benchmark: docs/benchmarks.md and docs/benchmarks.json
	$(PY) -m tools.bench

bench-smoke: deps
	$(PY) -m tools.bench --smoke

clean:
	rm -rf dist .devhost .data .pytest_cache .tools
