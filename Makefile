# The two commands of the README: `make demo` and `make test`. Both create .venv when missing.
# `make lint` runs ruff and mypy (the `lint` extra, installed into .venv on first use).
# `make bench` runs the performance benchmark (training/bench.py; the `training` and `backends` extras).
# `make installer` freezes the desktop app into dist/ganad/; `make installer-check` runs it (smoke check).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench app venv clean installer installer-check

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/ganad demo --workdir demo-work

# Two test processes (pytest-xdist): CI's machine has two cores, and each test keeps to one torch thread.
test: $(STAMP)
	QT_QPA_PLATFORM=offscreen OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2

LINT_STAMP := $(VENV)/.lint-tools
$(LINT_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[lint]'
	touch $(LINT_STAMP)

lint: $(LINT_STAMP)
	$(BIN)/ruff check ganad_clinic training tests installer
	$(BIN)/mypy ganad_clinic

# ONNX Runtime and OpenVINO go into .venv for the benchmark only: the app scores with torch.
BENCH_STAMP := $(VENV)/.bench-tools
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[training,backends]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python training/bench.py --threads 2 --json training/results/bench.json

app: $(STAMP)
	$(BIN)/ganad app

# PyInstaller goes into .venv only (the `installer` extra), never into the app's own dependencies.
INSTALLER_STAMP := $(VENV)/.installer-tools
$(INSTALLER_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[installer]'
	touch $(INSTALLER_STAMP)

installer: $(INSTALLER_STAMP)
	OMP_NUM_THREADS=1 $(BIN)/pyinstaller --noconfirm --log-level WARN \
		--distpath dist --workpath build/installer installer/ganad.spec
	cp installer/linux/ganad-clinic.desktop installer/linux/install.sh dist/ganad/
	cp resources/icon.png dist/ganad/ganad-clinic.png
	@du -sh dist/ganad

installer-check:
	bash installer/smoke_check.sh dist/ganad

clean:
	rm -rf $(VENV) demo-work build dist *.egg-info
