# The two commands of the course (see README.md):
#   make lab    set everything up and open the course in JupyterLab
#   make test   set everything up, lint (ruff), and run the whole test suite (units, doctests,
#               notebooks, browser)
#   make site   the executed course as a static website in site/ (README.md: 'make site')
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8888
JOBS ?= 2

.PHONY: setup lab lint test test-fast site clean
setup:
	bash scripts/setup.sh

lab: setup
	@echo ">> Starting JupyterLab on 127.0.0.1:$(PORT): open the http://127.0.0.1:$(PORT)/lab?token=... URL printed below (Ctrl-C to stop)"
	$(PY) -m jupyter lab notebooks/ --no-browser --ServerApp.ip=127.0.0.1 --ServerApp.port=$(PORT) \
	  $$( [ "$$(id -u)" = 0 ] && echo --allow-root )

lint: setup
	$(VENV)/bin/ruff check .

test: lint
	$(PY) -m pytest -n $(JOBS) --dist loadfile --durations=25

test-fast: setup
	$(PY) -m pytest -n $(JOBS) --dist loadfile cl_teach tests -m "not browser"

site: setup
	$(PY) tools/site.py

clean:
	rm -rf $(VENV) data/cache .pytest_cache
