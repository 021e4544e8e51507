# sound_video_gen: `make test` sets up .venv (once) and runs every check CI runs.
SHELL := bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export CUDA_VISIBLE_DEVICES :=
export MPLBACKEND := Agg
export PYTHONHASHSEED := 0
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: install test test-isa sync nbtest pytest test-slow test-browser browser-deps bench clean-venv demo figures figures-smoke

## Create .venv if missing and install the package with its dev extras (a no-op when up to date).
install: $(STAMP)

$(STAMP): settings.ini setup.py constraints.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	@echo "installing into $(VENV) (log: $(VENV)/install.log) ..."
	@( $(PY) -m pip install -U pip && $(PY) -m pip install -c constraints.txt -e ".[dev]" ) > $(VENV)/install.log 2>&1 \
	  || { tail -n 40 $(VENV)/install.log; echo "install failed; see $(VENV)/install.log"; exit 1; }
	@touch $(STAMP)
	@echo "installed."

## Everything CI checks: notebooks clean, library in sync, notebooks run, pytest passes.
test: install sync nbtest pytest

sync: install
	@$(PY) tools/check_sync.py

nbtest: install
	@echo "nbdev_test (untagged cells; skipped flags: slow cuda weights)"
	@$(VENV)/bin/nbdev_test --n_workers 0 --timing

pytest: install
	@$(PY) -m pytest -q -ra tests

## pytest again on torch's scalar CPU kernels (no AVX): a test that holds only on one instruction set fails here.
test-isa: install
	@echo "pytest with ATEN_CPU_CAPABILITY=default (scalar kernels)"
	@ATEN_CPU_CAPABILITY=default $(PY) -m pytest -q -ra tests

## Slow tier too (minutes on 2 cores).
test-slow: install
	@$(VENV)/bin/nbdev_test --n_workers 0 --flags slow
	@$(PY) -m pytest -q -ra tests --flags slow

## The widget tutorial in JupyterLab, driven by headless Chromium (screenshots in browser_artifacts/).
## Needs Chromium and chromedriver: `make browser-deps` installs Debian's packages (as root).
test-browser: install
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { echo "test-browser: chromium and chromedriver are missing; run 'make browser-deps' (apt-get install -y chromium chromium-driver)"; exit 1; }
	@$(PY) -m pytest -q -ra tests/browser --flags browser

browser-deps:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  command -v apt-get >/dev/null || { echo "browser-deps: no apt-get; install Chromium and a matching chromedriver by hand"; exit 1; }; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null \
	    || { echo "browser-deps: apt-get could not install chromium chromium-driver"; exit 1; }; }
	@chromium --version 2>/dev/null && chromedriver --version

## One report (synthesis beside NVlabs' code when NVLABS=PATH names a checkout, stage-0/3 steps, generate, 1-hour RSS):
## benchmarks/results/<machine>.json and .md. The single-purpose scripts benchmarks/bench_*.py take more options.
bench: install
	@$(PY) benchmarks/report.py $(if $(NVLABS),--nvlabs $(NVLABS),)

clean-venv:
	rm -rf $(VENV)

## The main job: the shipped demo model turns the shipped example sounds (and SOUND=my.wav, if given) into
## videos, demo_out/<name>.mp4 with a filmstrip preview demo_out/<name>.png.
DEMO_BUNDLE := sound_video_gen/pretrained/demo
DEMO_SOUNDS := sound_video_gen/pretrained/examples
SOUND ?=
demo: install
	@test -f $(DEMO_BUNDLE)/bundle.json || { echo "make demo: the demo model is not trained yet ($(DEMO_BUNDLE)/bundle.json is missing): \
	train it with 'sound-video-gen train-demo --run-dir runs/demo' and copy runs/demo/bundle to $(DEMO_BUNDLE)."; exit 1; }
	@mkdir -p demo_out
	@gen() { n=$$(basename "$${1%.*}"); $(VENV)/bin/sound-video-gen generate "$$1" -o "demo_out/$$n.mp4" --model demo --preview --overwrite --quiet; }; \
	for f in $(DEMO_SOUNDS)/*.wav; do gen "$$f" || exit 1; done; \
	if [ -n "$(SOUND)" ]; then gen "$(SOUND)" || exit 1; fi

## The paper's tables and figures with the shipped demo model (quick profile, about half an hour on 2 CPU cores):
## paper_figures/results/*_quick.*, committed. `figures-smoke` runs every notebook on tiny inputs (CI runs it).
figures: install
	@cd paper_figures && ../$(PY) run_all.py --profile quick

figures-smoke: install
	@cd paper_figures && ../$(PY) run_all.py --profile smoke
