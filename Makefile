# The two commands a new user needs: `make sweep` and `make test`. Everything else
# (venv, packages, Fashion-MNIST) is installed on first use. The venv is .venv: outside
# make, call the harness as `.venv/bin/python -m harness ...` (what it prints itself).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
EXP    ?= experiments/quick.yaml
# make report rebuilds NAME's report; without NAME, the sweep that ran last in the store
NAME   ?=
ARGS   ?=
export RAY_AUTH_MODE ?= disabled

.PHONY: install data test test-all sweep report ui bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	@$(MAKE) --no-print-directory data
	touch $@

# Debian's dataset-fashion-mnist where apt is usable; otherwise torchvision downloads it.
data:
	@if [ -d /usr/share/datasets/fashion-mnist ]; then \
		echo "Fashion-MNIST: /usr/share/datasets/fashion-mnist"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
		(apt-get update -q >/dev/null 2>&1 && apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1) || \
		echo "apt could not install dataset-fashion-mnist: torchvision will download Fashion-MNIST"; \
	elif command -v apt-get >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
		sudo apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
		echo "apt could not install dataset-fashion-mnist: torchvision will download Fashion-MNIST"; \
	else \
		echo "no usable apt: torchvision will download Fashion-MNIST on first use"; \
	fi

# Fast tier for every change, on 2 worker processes (pytest-xdist). test-all is what CI runs
# (.ci/run): both tiers in one run on the same 2 workers, slow tests first (tests/conftest.py
# orders them) and handed out one at a time (--maxschedchunk 1), so the short tests fill the
# gaps while a long sweep runs on the other worker.
FAST := -m "not slow and not browser"
test: install
	$(BIN)/python -m pytest $(FAST) -n 2 --durations=15

test-all: install
	$(BIN)/python -m pytest -n 2 --maxschedchunk 1 --durations=25

sweep: install
	$(BIN)/python -m harness sweep $(EXP) $(ARGS)

report: install
	$(BIN)/python -m harness report $(NAME)

# Rebuild every committed report and pairs.md from the committed stores / trials.csv into a
# scratch folder; fails listing the files that differ (harness/study/figures.py; tens of minutes).
.PHONY: figures
figures: install
	$(BIN)/python -m harness.study.figures check $(ARGS)

ui: install
	$(BIN)/python -m harness ui --host 127.0.0.1 --port 5000 $(ARGS)

bench: install
	$(BIN)/python -m harness bench $(ARGS)

clean:
	rm -rf $(VENV) *.egg-info
