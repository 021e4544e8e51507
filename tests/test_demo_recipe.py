"`sound-video-gen train-demo` (the demo model's recipe) and the example sounds `make demo` ships."
import json
import os
import re
import shlex
import time
from pathlib import Path

import pytest
import soundfile as sf
import torch

from sound_video_gen.cli import COMMANDS, dispatch
from sound_video_gen.cli import demo
from sound_video_gen.core import UserError, get_config, run_cli, save_checkpoint

ORDER = ["data", "classifier", "generator", "clip", "audio", "inverter", "ssvg", "editor", "editor_long", "bundle"]
EXAMPLES = Path(demo.__file__).resolve().parents[1] / "pretrained" / "examples"


def _ckpt(path: Path, meta: dict | None = None) -> Path:
    "A tiny sound_video_gen checkpoint standing in for a stage's exported weights."
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_checkpoint(path, {"w": torch.zeros(1)}, {"config_class": "test"}, meta=meta or {})


def _fake_outputs(run: Path, data: Path) -> None:
    "Every stage's output, complete."
    data.mkdir(parents=True, exist_ok=True)
    (data / "synthscapes.json").write_text("{}")
    _ckpt(run / "ssclf/classifier.safetensors", {"steps": 400})
    _ckpt(run / "generator/G_ema.safetensors", {"step": 4500})
    _ckpt(run / "clip/clip.safetensors", {"step": 1500})
    (run / "clip/config.json").write_text(json.dumps({"max_steps": 1500}))
    _ckpt(run / "fa/audio_encoder.safetensors", {"step": 1500})
    _ckpt(run / "inverter/image_encoder.safetensors", {"step": 1000})
    _ckpt(run / "ssvg/ssvg.safetensors", {"step": 400})
    _ckpt(run / "editor/ssvg.safetensors", {"step": 600})
    _ckpt(run / "editor_long/ssvg.safetensors", {"step": 600})
    (run / "bundle").mkdir()
    (run / "bundle/bundle.json").write_text("{}")


def _error(capsys) -> str:
    lines = [l for l in capsys.readouterr().err.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and lines[0].endswith("."), lines
    return lines[0]


def test_the_stage_table():
    assert [s.name for s in demo.STAGES] == ORDER
    for s in demo.STAGES:   # each stage is the line of a real command, and names only stages before it
        assert s.argv[0] in COMMANDS
        assert all(ORDER.index(n) < ORDER.index(s.name) for n in demo._needs(s))
    assert set(demo.PACKAGE_ROLES) <= set(ORDER)


def test_dry_run_lists_every_stage_in_order(tmp_path, capsys):
    run = tmp_path / "runs/demo"
    assert run_cli(dispatch, ["train-demo", "--run-dir", str(run), "--dry-run", "--threads", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    names = [l.split()[0] for l in out if not l.startswith(" ")]
    assert names == ORDER and all("pending" in l for l in out if not l.startswith(" "))
    lines = [l.strip() for l in out if l.startswith(" ")]
    assert [shlex.split(l)[1] for l in lines] == ["synthscapes", "bench", "train-generator", "train-clip",
                                                 "train-audio-clip", "train-inverter", "train-ssvg", "train-ssvg", "train-ssvg", "bundle"]
    d, r = run / "data", run
    assert lines[0] == f"sound-video-gen synthscapes {d} --n-per-class 80 --size 64"
    assert lines[2] == (f"sound-video-gen train-generator {d} --run-dir {r}/generator --config train-generator-demo "
                        f"--ssclf {r}/ssclf/classifier.safetensors --max-steps 4500 --set ckpt_every=250 sample_every=250 "
                        "--threads 1")
    s3 = shlex.split(lines[6])   # stage 3: the anchored model, taught by the inverter's trajectories
    assert s3[s3.index("--model") + 1] == "ssvg-anchored-demo" and s3[s3.index("--teacher") + 1] == f"{r}/inverter/image_encoder.safetensors"
    assert "render_every=0" in s3 and "w_teacher=1" in s3 and s3[s3.index("--run-dir") + 1] == f"{r}/ssvg"
    ed = shlex.split(lines[7])   # the editor: the paper's configuration of stage 3, then continued on whole clips
    assert ed[ed.index("--model") + 1] == "ssvg-demo" and ed[ed.index("--run-dir") + 1] == f"{r}/editor"
    assert f"init_from={r}/editor/checkpoint.safetensors" in shlex.split(lines[8])
    assert shlex.split(lines[9])[2:5] == [f"{r}/bundle", "--model", f"{r}/ssvg"] and "--threads" not in lines[9]
    assert f"--editor {r}/editor_long/ssvg.safetensors" in lines[9]
    assert f"--image-encoder {r}/inverter/image_encoder.safetensors" in lines[9] and f"--classifier {r}/ssclf/classifier.safetensors" in lines[5]
    assert not run.exists()   # a dry run writes nothing


@pytest.mark.parametrize("stages, match", [("clip,nope", "unknown stage 'nope' in --stages"), (",", "--stages is empty"),
                                            ("audio", "needs .*clip.safetensors, the output of stage clip: add clip to --stages, or pass --from-package"),
                                            ("generator", "add classifier to --stages\\.$")])
def test_stages_are_checked(tmp_path, capsys, stages, match):
    data = tmp_path / "data"; data.mkdir(); (data / "synthscapes.json").write_text("{}")
    args = ["train-demo", "--run-dir", str(tmp_path / "run"), "--data", str(data), "--stages", stages]
    assert run_cli(dispatch, args) == 2
    assert re.search(match, _error(capsys))
    assert not (tmp_path / "run").exists()


def test_a_subset_runs_with_upstream_outputs_in_place(tmp_path):
    run, data = tmp_path / "run", tmp_path / "data"
    _fake_outputs(run, data)
    (run / "fa/audio_encoder.safetensors").unlink()
    steps = {p.stage.name: p for p in demo.plan(run, data, ["audio", "ssvg"])}
    assert [n for n, p in steps.items() if p.runs] == ["audio"]          # ssvg's output is complete
    assert steps["audio"].inputs == {"data": data / "synthscapes.json", "clip": run / "clip/clip.safetensors"}


def test_skip_logic(tmp_path, capsys, monkeypatch):
    run, data = tmp_path / "run", tmp_path / "data"
    _fake_outputs(run, data)
    state = lambda: {p.stage.name: (p.done, p.state) for p in demo.plan(run, data)}
    assert all(done for done, _ in state().values())
    # G_ema.safetensors is written at every checkpoint: short of --max-steps it is not done, and the stage resumes.
    _ckpt(run / "generator/G_ema.safetensors", {"step": 250})
    os.utime(run / "generator/G_ema.safetensors", (time.time() + 30,) * 2)   # newer than the bundle
    assert state()["generator"] == (False, "at step 250 of 4500")
    # a run with a checkpoint and no exported weights yet; the target comes from its config.json without --max-steps
    (run / "clip/clip.safetensors").unlink()
    _ckpt(run / "clip/checkpoint.safetensors", {"step": 800})
    assert state()["clip"] == (False, "checkpoint at step 800 of 1500")
    (run / "ssvg/ssvg.safetensors").write_bytes(b"torn")
    assert state()["ssvg"] == (False, "unreadable")
    # the bundle only assembles: it is redone when an input is being made now, or is newer than it
    assert state()["bundle"] == (False, "older than its inputs")
    with pytest.raises(UserError, match="add clip to --stages"): demo.plan(run, data, ["bundle"])   # clip is missing
    _ckpt(run / "clip/clip.safetensors", {"step": 1500})
    assert demo.plan(run, data, ["bundle"])[-1].done is False
    _ckpt(run / "ssvg/ssvg.safetensors", {"step": 800})
    os.utime(run / "bundle/bundle.json", (time.time() + 60,) * 2)
    assert demo.plan(run, data, ["bundle"])[-1].done
    (run / "ssvg/checkpoint.safetensors").write_bytes(b"x")              # not an input of the bundle
    os.utime(run / "ssvg/checkpoint.safetensors", (time.time() + 120,) * 2)
    assert demo.plan(run, data, ["bundle"])[-1].done
    os.utime(run / "ssvg/ssvg.safetensors", (time.time() + 120,) * 2)
    assert demo.plan(run, data, ["bundle"])[-1].state == "older than its inputs"
    (run / "ssvg/ssvg.safetensors").write_bytes(b"torn")
    assert run_cli(dispatch, ["train-demo", "--run-dir", str(run), "--data", str(data), "--dry-run"]) == 0
    out = capsys.readouterr().out
    w = max(map(len, ORDER))
    assert (f"{'generator':<{w}}  pending (at step 250 of 4500; resumes)" in out and f"{'bundle':<{w}}  pending (older than its inputs)" in out
            and f"{'data':<{w}}  done" in out)
    # with every output complete nothing runs
    _fake_outputs(tmp_path / "run2", data)
    monkeypatch.setattr("sound_video_gen.cli.dispatch", lambda argv: pytest.fail(f"ran {argv}"))
    assert demo.main(["--run-dir", str(tmp_path / "run2"), "--data", str(data)]) == 0
    assert capsys.readouterr().out.count(": done (") == len(ORDER)
    assert not (tmp_path / "run2/recipe.jsonl").exists()


def test_run_records_each_stage_and_hands_the_recipe_to_the_bundle(tmp_path, monkeypatch, capsys):
    run, data = tmp_path / "run", tmp_path / "data"
    _fake_outputs(run, data)
    for f in ("ssvg/ssvg.safetensors", "bundle/bundle.json"): (run / f).unlink()
    ran = []
    def fake(argv):
        ran.append(argv)
        if argv[0] == "train-ssvg": _ckpt(run / "ssvg/ssvg.safetensors", {"step": 800})
        if argv[0] == "bundle":
            facts = json.loads(Path(argv[argv.index("--training") + 1]).read_text())
            assert [shlex.split(l)[1] for l in facts["recipe"]][:2] == ["synthscapes", "bench"] and "ssvg" in facts["stage_seconds"]
            (run / "bundle/bundle.json").write_text("{}")
        return 0
    monkeypatch.setattr("sound_video_gen.cli.dispatch", fake)
    assert demo.main(["--run-dir", str(run), "--data", str(data), "--stages", "ssvg,bundle"]) == 0
    assert [a[0] for a in ran] == ["train-ssvg", "bundle"]
    out = capsys.readouterr().out
    assert f"$ sound-video-gen train-ssvg {data} --run-dir {run}/ssvg" in out
    recs = [json.loads(l) for l in (run / "recipe.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in recs] == ["ssvg", "bundle"] and recs[0]["argv"] == ["sound-video-gen", *ran[0]]
    assert all(r["seconds"] >= 0 and r["finished"] for r in recs)
    # a stage that fails stops the recipe with one sentence naming it
    (run / "bundle/bundle.json").unlink()
    def broken(argv): raise UserError("no config named 'ssvg-demo'.")
    monkeypatch.setattr("sound_video_gen.cli.dispatch", broken)
    assert run_cli(dispatch, ["train-demo", "--run-dir", str(run), "--data", str(data), "--stages", "bundle"]) == 2
    assert "stage bundle: no config named 'ssvg-demo'." in _error(capsys)


@pytest.fixture(scope="module")
def package_bundle(tmp_path_factory):
    "A tiny bundle of random networks with all four roles, standing in for the shipped demo bundle."
    from sound_video_gen.model.bundle import make_bundle
    from sound_video_gen.generators.factory import create_generator
    from sound_video_gen.model.ssvg import SSVG
    from sound_video_gen.multimodal.audio_encoder import AudioEncoder
    from sound_video_gen.multimodal.clip import load_clip
    G = create_generator("stylegan2-tiny", seed=0).eval()
    torch.manual_seed(0)
    clip = load_clip("clip-tiny")
    fa = AudioEncoder(get_config("audio-encoder-tiny", embed_dim=clip.embed_dim))
    root = tmp_path_factory.mktemp("pretrained")
    from sound_video_gen.model.inversion import ImageEncoder
    enc = ImageEncoder.for_generator(G, widths=(8, 8, 16, 16), units=(1, 1, 1, 1), head_width=8).eval()
    return make_bundle(root / "demo", G, SSVG(get_config("ssvg-tiny").for_generator(G)).eval(), fa, clip, enc,
                       editor=SSVG(get_config("ssvg-tiny").for_generator(G)).eval())


def test_from_package_uses_the_shipped_bundle(tmp_path, package_bundle, monkeypatch, capsys):
    run, data = tmp_path / "run", tmp_path / "data"
    data.mkdir(); (data / "synthscapes.json").write_text("{}")
    # no shipped bundle: one sentence
    monkeypatch.setattr(demo, "package_bundle", lambda: tmp_path / "nothing")
    assert run_cli(dispatch, ["train-demo", "--run-dir", str(run), "--data", str(data), "--stages", "ssvg", "--from-package"]) == 2
    assert "no demo bundle ships with this package yet" in _error(capsys)
    monkeypatch.setattr(demo, "package_bundle", lambda: package_bundle)
    card = json.loads((package_bundle / "bundle.json").read_text())
    steps = {p.stage.name: p for p in demo.plan(run, data, ["ssvg", "bundle"], from_package=True)}
    want = {"generator": package_bundle / card["files"]["generator"]["path"],
            "inverter": package_bundle / card["files"]["image_encoder"]["path"]}
    assert steps["ssvg"].inputs == {"data": data / "synthscapes.json", **want}
    argv = steps["ssvg"].argv
    assert argv[argv.index("--generator") + 1] == str(want["generator"]) and argv[argv.index("--teacher") + 1] == str(want["inverter"])
    assert steps["bundle"].inputs["ssvg"] == run / "ssvg/ssvg.safetensors"   # run now, so taken from the run folder
    assert steps["bundle"].inputs["clip"] == package_bundle / card["files"]["clip"]["path"]
    # an output that exists in the run folder wins over the package's
    _ckpt(run / "generator/G_ema.safetensors", {"step": 4500})
    assert demo.plan(run, data, ["ssvg"], from_package=True)[6].inputs["generator"] == run / "generator/G_ema.safetensors"
    assert run_cli(dispatch, ["train-demo", "--run-dir", str(run), "--data", str(data), "--stages", "ssvg", "--from-package", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"(inverter from the package: {want['inverter']})" in out and "(generator from the package" not in out


def test_the_example_sounds_make_demo_uses():
    files = sorted(EXAMPLES.glob("*.wav"))
    assert [f.stem for f in files] == ["birdsong", "ocean_waves", "thunderstorm"]
    for f in files:
        info = sf.info(f)
        assert info.samplerate == 16000 and info.channels == 1 and info.subtype == "PCM_16"
        assert abs(info.duration - 4.0) < 0.05 and f.stat().st_size < 200_000
        y, _ = sf.read(f)
        assert abs(y).max() > 0.01   # not silent (generate refuses a silent sound)


def test_bundle_records_training_facts_from_a_file(tmp_path, package_bundle, capsys):
    from sound_video_gen.model.bundle import verify_bundle
    facts = tmp_path / "recipe.json"
    facts.write_text(json.dumps({"recipe": ["sound-video-gen synthscapes d"], "stage_seconds": {"data": 1.5}, "data": "x"}))
    base = ["bundle", str(tmp_path / "b"), "--model", str(package_bundle / "ssvg.safetensors"),
            "--generator", str(package_bundle / "generator.safetensors")]
    assert run_cli(dispatch, base + ["--training", str(facts), "--data", "SynthScapes"]) == 0
    training = verify_bundle(tmp_path / "b")["training"]
    assert training["recipe"] == ["sound-video-gen synthscapes d"] and training["data"] == "SynthScapes"   # --data wins
    facts.write_text("[1, 2]")
    assert run_cli(dispatch, base + ["--training", str(facts), "--overwrite"]) == 2
    assert "must hold a JSON object, got a list" in _error(capsys)
    assert run_cli(dispatch, base + ["--training", str(tmp_path / "missing.json"), "--overwrite"]) == 2
    assert "does not exist" in _error(capsys)


def test_every_stage_line_parses_with_its_command(tmp_path):
    "Each recipe line is accepted by the real command's parser: run against a dataset path that is a file, every "
    "command gets past its flags and stops at the first check of its inputs."
    not_a_folder = tmp_path / "data"
    not_a_folder.write_text("")
    for p in demo.plan(tmp_path / "run", not_a_folder, threads=1):
        with pytest.raises(UserError) as e: dispatch(p.argv)
        assert "--help')" not in str(e.value), (p.stage.name, str(e.value))   # an argparse error names --help
        assert str(not_a_folder) in str(e.value) or "does not exist" in str(e.value), (p.stage.name, str(e.value))


def test_the_bundle_stage_runs_for_real_and_records_the_recipe(tmp_path, package_bundle, capsys):
    import shutil
    from sound_video_gen.model.bundle import verify_bundle
    run = tmp_path / "run"
    for src, dst in (("generator", "generator/G_ema"), ("ssvg", "ssvg/ssvg"), ("audio_encoder", "fa/audio_encoder"), ("clip", "clip/clip"),
                     ("image_encoder", "inverter/image_encoder"), ("editor", "editor_long/ssvg")):
        (run / dst).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(package_bundle / f"{src}.safetensors", run / f"{dst}.safetensors")
    assert run_cli(dispatch, ["train-demo", "--run-dir", str(run), "--stages", "bundle"]) == 0
    training = verify_bundle(run / "bundle")["training"]
    assert training["data"] == demo.DEMO_DATA and len(training["recipe"]) == len(ORDER)
    assert training["recipe"][0].startswith("sound-video-gen synthscapes DATA ") and training["stage_seconds"] == {}
    assert str(run) not in json.dumps(training["recipe"]) and "--run-dir RUN/ssvg" in training["recipe"][6]   # no machine paths
    assert json.loads((run / "recipe.jsonl").read_text())["stage"] == "bundle"
    assert "wrote bundle" in capsys.readouterr().out
    # run again: the bundle is newer than its inputs, so nothing runs
    assert run_cli(dispatch, ["train-demo", "--run-dir", str(run), "--stages", "bundle"]) == 0
    assert len((run / "recipe.jsonl").read_text().splitlines()) == 1
