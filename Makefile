# `make run`: install into .venv and run the main job (`dvc repro` of params.yaml's suite).
# `make test`: install into .venv and run the tests. Both work on a fresh machine with
# Python 3.11 and git. TORCH pins the build that lies on this team's machines; elsewhere
# `make TORCH="torch torchvision" run` takes whatever pip picks.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.14.1 torchvision==0.29.1

.PHONY: install run test lint servers

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed

run: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro; code=$$?; \
	$(BIN)/python -m benchmark summary; exit $$code

# PostgreSQL for tests/test_engines_*.py (which start a throwaway cluster on 127.0.0.1 and
# an `mlflow server`): Debian's package when missing, installed as root (CI runs as root)
servers:
	@command -v pg_ctl >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends postgresql >/dev/null; \
	else echo "PostgreSQL is missing: apt-get install -y postgresql (as root)" >&2; exit 1; fi

test: install servers
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check benchmark tests
