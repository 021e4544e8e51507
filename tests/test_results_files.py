"""Every result file in paper_figures/results is written by code: the command it records, rerun on smoke data (the
tiny SynthScapes-Bench setup, a few clips and steps), writes a file with the same keys."""
import json, shlex
from pathlib import Path

import pytest
import torch

from sound_video_gen.cli import dispatch
from sound_video_gen.core import run_cli

RESULTS = Path(__file__).resolve().parent.parent / "paper_figures" / "results"
COMMITTED = sorted(p for p in RESULTS.glob("*.json") if not p.stem.endswith("_quick") and "_smoke" not in p.stem)   # papermill's (test_paper_figures, run_all)
SMALL = {"--scenes": "2", "--clips": "2", "--images": "2", "--max-clips": "2", "--max-steps": "2", "--steps": "2",
         "--eval-images": "2", "--eval-steps": "2"}


@pytest.fixture(scope="module")
def smoke(tiny_bench, tmp_path_factory):
    "The tiny bench setup, its bundle with a random image encoder added (the committed runs use the demo's)."
    from sound_video_gen.model.bundle import make_bundle, verify_bundle
    from sound_video_gen.generators.factory import load_generator
    from sound_video_gen.model.inversion import ImageEncoder, ImageEncoderConfig
    from sound_video_gen.model.ssvg import load_ssvg
    b = tiny_bench["bundle"]
    files = verify_bundle(b)["files"]
    G = load_generator(b / files["generator"]["path"])
    torch.manual_seed(0)
    enc = ImageEncoder(ImageEncoderConfig(num_ws=G.num_ws, w_dim=G.w_dim, input_size=32, widths=(8, 8, 8, 8), units=(1, 1, 1, 1),
                                          head_width=8)).set_w_avg(G)
    d = tmp_path_factory.mktemp("smoke")
    from sound_video_gen.multimodal.clip import load_clip
    bundle = make_bundle(d / "bundle", G, load_ssvg(b / files["ssvg"]["path"]), image_encoder=enc, clip=load_clip("clip-tiny"))
    return {**tiny_bench, "bundle": bundle, "work": d}


def smoke_argv(command: str, s: dict, out: Path) -> list[str]:
    "The recorded command with its data, classifier, model, outputs and sizes swapped for the smoke setup's."
    argv = shlex.split(command)[1:]
    sub = 2 if argv[0] == "bench" else 1
    out_argv, i, flag = argv[:sub], sub, None
    positional_done = False
    while i < len(argv):
        t = argv[i]
        if t.startswith("--"):
            flag = t
            out_argv.append(t)
        elif flag is None and not positional_done:
            out_argv.append(s["data"]); positional_done = True
        elif flag == "--classifier": out_argv.append(s["clf"])
        elif flag == "--model": out_argv.append(str(s["bundle"]))
        elif flag == "--also": out_argv.append(f"{t.partition('=')[0]}={s['clf']}")
        elif flag == "--compare": out_argv.append(f"{t.partition('=')[0]}={s['bundle'] / 'ssvg.safetensors'}")
        elif flag == "--out": out_argv.append(str(out))
        elif flag == "--run-dir": out_argv.append(str(s["work"] / f"run-{out.stem}"))
        elif flag == "--set": out_argv.append({"decay_steps": "decay_steps=2", "warmup_steps": "warmup_steps=1"}.get(t.partition("=")[0], t))
        elif flag in SMALL: out_argv.append(SMALL[flag])
        else: out_argv.append(t)
        i += 1
    if "--out" not in out_argv: out_argv += ["--out", str(out)]
    if argv[0] == "train-inverter":   # the demo's encoder config, shrunk to the smoke generator's W+
        fit = ["encoder.num_ws=8", "encoder.w_dim=32", "encoder.input_size=32", "encoder.widths=[8,8,8,8]", "batch_size=2"]
        if "--set" not in out_argv: out_argv.append("--set")
        at = out_argv.index("--set") + 1
        out_argv[at:at] = fit
    return out_argv


def _shape(rec: dict) -> dict:
    "run_all's comparison: top-level keys, and for each list of records the union of their keys."
    import importlib.util
    spec = importlib.util.spec_from_file_location("run_all", RESULTS.parent / "run_all.py")
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod._shape(rec)


def test_every_committed_result_records_its_command():
    assert len(COMMITTED) >= 5
    for p in COMMITTED:
        rec = json.loads(p.read_text())
        assert isinstance(rec.get("command"), str) and rec["command"].startswith("sound-video-gen "), p.name


@pytest.mark.parametrize("path", COMMITTED, ids=[p.stem for p in COMMITTED])
def test_the_recorded_command_writes_these_keys(path, smoke, capsys):
    rec = json.loads(path.read_text())
    out = smoke["work"] / f"{path.stem}.json"
    argv = smoke_argv(rec["command"], smoke, out)
    assert run_cli(dispatch, argv) == 0, capsys.readouterr().err
    fresh = json.loads(out.read_text())
    assert _shape(fresh) == _shape(rec), (path.name, sorted(set(fresh) ^ set(rec)))
