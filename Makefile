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

.PHONY: install test sync nbtest pytest test-slow bench clean-venv demo

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

## Slow tier too (minutes on 2 cores).
test-slow: install
	@$(VENV)/bin/nbdev_test --n_workers 0 --flags slow
	@$(PY) -m pytest -q -ra tests --flags slow

bench: install
	@for f in benchmarks/bench_*.py; do $(PY) $$f; done

clean-venv:
	rm -rf $(VENV)

## The main job (for now: a SynthScapes clip and what the model hears of its sound).
demo: install
	@mkdir -p demo_out
	@$(PY) -c "from sound_video_gen.data.synthscapes import generate_clip; from sound_video_gen.data.clips import write_video; \
	c = generate_clip('thunderstorm', seed=7, seconds=4.0, size=128, fps=16); \
	write_video('demo_out/thunderstorm.mp4', c.frames, c.fps, audio=c.audio, sr=c.sr); print('wrote demo_out/thunderstorm.mp4')"
	@$(VENV)/bin/sound-video-gen mel demo_out/thunderstorm.mp4 --fps 16 -o demo_out/thunderstorm_mel.png --overwrite
