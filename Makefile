# The README's two commands: `make demo` and `make test`. Each creates .venv (python3 -m venv +
# pip, which takes torch/torchvision from this machine's local wheels) and installs what it needs,
# Debian's dataset-fashion-mnist included.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.facompress-installed
FMNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test venv data browser clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e ".[cpu,dev]"
	@touch $(STAMP)

data: $(FMNIST)

$(FMNIST):
	$(SUDO) apt-get install -y dataset-fashion-mnist || \
	  ($(SUDO) apt-get update && $(SUDO) apt-get install -y dataset-fashion-mnist)

# Headless Chromium for tests/report/test_html_browser.py (~55 s to install here, 2026-12-01); where apt
# cannot install it, that test is skipped with the reason.
browser:
	@command -v chromium >/dev/null || $(SUDO) apt-get install -y chromium || \
	  ($(SUDO) apt-get update && $(SUDO) apt-get install -y chromium) || echo "chromium not installed: browser test skipped"

# One pytest worker per core (tests/conftest.py gives each one thread); a file's tests stay on one worker, so a
# module's fixtures are built once.
test: venv data browser
	$(PY) -m pytest -q -p no:cacheprovider -n $(shell nproc) --dist loadfile

demo: venv data
	PATH="$(abspath $(VENV))/bin:$$PATH" bash examples/demo.sh

clean:
	rm -rf $(VENV) runs .pytest_cache
