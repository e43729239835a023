# lthnb: `make demo` runs the whole suite on the demo parameters, `make test` runs the tests.
# Both install everything first (`make setup`, quick when already done).

VENV     ?= .venv
PYTHON   ?= python3
PARAMS   ?= params/demo.yaml
BIN      := $(VENV)/bin
NAME     := $(basename $(notdir $(PARAMS)))
REPORTS  := reports/$(NAME)
NOTEBOOKS := 01_dataset 02_model 03_pruning_percent 04_train 05_plot 06_analysis 07_stability
FASHION  := /usr/share/datasets/fashion-mnist

.PHONY: setup data test lint format sync demo report lab clean bench

# Also points this clone's git at the notebook filter (.gitattributes): outputs are not committed.
setup: $(VENV)/.installed data
	@$(BIN)/python -m lthnb.notebook.git_filter install-git-filter

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# Real Fashion-MNIST from Debian's package (the demo's data); skipped where it cannot be had.
data:
	@if [ ! -d $(FASHION) ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
		(apt-get update -q >/dev/null && apt-get install -y -q dataset-fashion-mnist >/dev/null); \
	fi
	@[ -d $(FASHION) ] || echo "note: $(FASHION) missing; the demo needs Fashion-MNIST (see README)"

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Regenerate every copy of lthnb/params/schema.py: params/*.yaml, notebook parameters, README.
sync: $(VENV)/.installed
	$(BIN)/python -m lthnb.params.sync

demo: setup
	$(MAKE) --no-print-directory report PARAMS=params/demo.yaml

# Run the notebooks (01-07) on $(PARAMS) with papermill and render each to HTML under reports/.
report: setup
	@mkdir -p $(REPORTS)
	@for notebook in $(NOTEBOOKS); do \
		echo "== $$notebook ($(PARAMS))"; \
		LTHNB_HEADLESS=1 $(BIN)/papermill notebooks/$$notebook.ipynb \
			$(REPORTS)/$$notebook.ipynb -f $(PARAMS) -k python3 --cwd . --no-progress-bar \
			--log-level WARNING || exit 1; \
		$(BIN)/python -m lthnb.report.render $(REPORTS)/$$notebook.ipynb || exit 1; \
	done
	@echo "reports: $(REPORTS)/*.html"

# Train the trials of $(PARAMS) in parallel, one papermill run of 04_train per trial on
# $(JOBS) local dask worker processes, then run 05_plot on the merged run folder and render
# both to HTML: `make sweep PARAMS=params/lenet.yaml JOBS=4`. On SLURM: scripts/slurm_sweep.sh.
JOBS ?= 2
.PHONY: sweep
sweep: setup
	@mkdir -p $(REPORTS)
	LTHNB_HEADLESS=1 $(BIN)/python -m lthnb.lottery.sweep $(PARAMS) --jobs $(JOBS) --reports $(REPORTS)
	@echo "== 05_plot ($(PARAMS))"
	@LTHNB_HEADLESS=1 $(BIN)/papermill notebooks/05_plot.ipynb $(REPORTS)/05_plot.ipynb \
		-f $(PARAMS) -k python3 --cwd . --no-progress-bar --log-level WARNING
	@$(BIN)/python -m lthnb.report.render $(REPORTS)/05_plot.ipynb \
		$(REPORTS)/04_train_trial_*.ipynb
	@echo "reports: $(REPORTS)/*.html"

# JupyterLab at the repository root, on this machine only (127.0.0.1); open the URL it prints
# (with its token). As root (the README's setup installs Debian packages) it needs --allow-root.
lab: setup
	@echo "JupyterLab: open the http://127.0.0.1:...?token=... URL printed below; Ctrl-C stops it"
	$(BIN)/jupyter lab --no-browser --ip=127.0.0.1 --ServerApp.root_dir=. \
		$$([ "$$(id -u)" = 0 ] && echo --allow-root)

clean:
	rm -rf reports runs

# Speed figures (a benchmark, not a test): prints `ratios: ...` on its last line.
bench: setup
	$(BIN)/python bench/train_speed.py
