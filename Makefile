# Two commands matter (see README.md):
#   make start   set everything up from a fresh clone and start the portal with demo data (embedded mode)
#   make test    lint, format check and the whole test suite (SQLite; PostgreSQL + Redis when configured)

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 5000
FLASK  := $(BIN)/flask --app portal

.PHONY: start test lint format install install-dev clean-instance screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.runtime-installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@ $(VENV)/.runtime-installed

install: $(VENV)/.runtime-installed
install-dev: $(VENV)/.dev-installed

start: install
	$(FLASK) db upgrade
	@if $(FLASK) db-is-empty; then $(FLASK) seed-demo; fi
	@echo ""
	@echo "  Tuition Invoice Portal: http://$(HOST):$(PORT)/"
	@echo "  Demo logins (instance/demo-logins.txt):"
	@sed 's/^/    /' instance/demo-logins.txt 2>/dev/null || echo "    (none: the database was not empty when first started)"
	@echo ""
	$(FLASK) run --host $(HOST) --port $(PORT)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: lint
	$(BIN)/pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

# Regenerate docs/screenshots/ from the browser journeys (embedded mode, SQLite): the journeys' shots,
# every main page of each role at 1280 and 390 px (pages/), the invoice PDF's first page and the email.
screenshots: install-dev
	E2E_SCREENSHOT_DIR=docs/screenshots $(BIN)/pytest -p no:xdist tests/e2e -k sqlite $(PYTEST_ARGS)
	$(BIN)/python docs/screenshots/make_pdf_preview.py
	$(BIN)/python docs/screenshots/make_email_previews.py --docs
