"SynthScapes-Bench with a model: bench run --model (a bundle or an ssvg file), bench table2 and bench edit on a tiny set."
import json
from pathlib import Path

import pytest

from sound_video_gen.cli import dispatch
from sound_video_gen.core import run_cli
from sound_video_gen.core import UserError, file_sha256


@pytest.fixture(scope="module")
def setup(tiny_bench):
    "The shared tiny SynthScapes-Bench setup (tests/conftest.py)."
    return tiny_bench


def _cli(capsys, *argv):
    rc = run_cli(dispatch, list(map(str, argv)))
    out, err = capsys.readouterr()
    return rc, out, err


def _one_sentence(rc, err, word):
    assert rc == 2 and "Traceback" not in err, err
    line = err.strip()
    assert "\n" not in line and line.startswith("error: ") and line.endswith(".") and word in line, err


def test_bad_model_flags_are_one_sentence(setup, capsys):
    base = ["bench", "run", setup["data"], "--classifier", setup["clf"]]
    _one_sentence(*_cli(capsys, *base, "--method", "ssvg")[::2], "--model")
    _one_sentence(*_cli(capsys, *base, "--method", "real-clips", "--sound", "none")[::2], "--method ssvg only")
    _one_sentence(*_cli(capsys, *base, "--method", "ssvg", "--model", setup["dir"] / "nope.safetensors")[::2], "does not exist")
    _one_sentence(*_cli(capsys, *base, "--method", "ssvg", "--model", "no-such-bundle")[::2], "no bundle named")
    ssvg = setup["bundle"] / "ssvg.safetensors"
    _one_sentence(*_cli(capsys, *base, "--method", "linear-interpolation", "--model", ssvg)[::2], "bundle")
    _one_sentence(*_cli(capsys, *base, "--method", "ssvg", "--model", ssvg)[::2], "needs a generator")


def test_run_with_a_bundle_records_the_model(setup, capsys):
    log = setup["dir"] / "results.jsonl"
    b = setup["bundle"]
    rc, out, err = _cli(capsys, "bench", "run", setup["data"], "--classifier", setup["clf"], "--method", "ssvg", "--model", b,
                        "--sound", "first", "--beta", "0.5", "--max-clips", 4, "--label", "ssvg first", "--log", log)
    assert rc == 0, err
    rc, _, err = _cli(capsys, "bench", "run", setup["data"], "--classifier", setup["clf"], "--method", "linear-interpolation",
                      "--model", b, "--max-clips", 4, "--log", log)
    assert rc == 0, err
    ssvg, lin = map(json.loads, log.read_text().splitlines())
    assert ssvg["model"] == {"file": str(b / "ssvg.safetensors"), "sha256": file_sha256(b / "ssvg.safetensors"), "sound": "first", "beta": 0.5}
    assert ssvg["method_info"]["sound"] == "first" and ssvg["label"] == "ssvg first" and ssvg["results"]["num_fake"] == 4
    for r in (ssvg, lin):   # both render with the bundle's generator
        assert r["generator"] == str(b / "generator.safetensors") and r["generator_sha256"] == file_sha256(b / "generator.safetensors")
    assert "model" not in lin and lin["label"] is None
    rc, out, _ = _cli(capsys, "bench", "table", log)
    assert rc == 0 and "| ssvg (ssvg first) | bundle/generator.safetensors |" in out and "| linear-interpolation |" in out


def test_sound_and_beta_change_the_scores_and_repeat_when_equal(setup, capsys):
    "--sound and --beta reach the videos: each changes the scores; the same flags give the same scores."
    log = setup["dir"] / "effects.jsonl"
    def scores(*flags):
        rc, _, err = _cli(capsys, "bench", "run", setup["data"], "--classifier", setup["clf"], "--method", "ssvg", "--model",
                          setup["bundle"], "--max-clips", 4, "--log", log, *flags)
        assert rc == 0, err
        res = json.loads(log.read_text().splitlines()[-1])["results"]
        return {k: v for k, v in res.items() if isinstance(v, float) and "time" not in k and "second" not in k}
    base = scores("--sound", "first", "--beta", "0.5")
    assert base and base == scores("--sound", "first", "--beta", "0.5")
    for flags in (("--sound", "all", "--beta", "0.5"), ("--sound", "first", "--beta", "1.5")):
        other = scores(*flags)
        assert other.keys() == base.keys() and other != base, flags


def test_table2_writes_six_rows(setup, capsys):
    out_json = setup["dir"] / "t2.json"
    b = setup["bundle"]
    rc, out, err = _cli(capsys, "bench", "table2", setup["data"], "--classifier", setup["clf"], "--model", b, "--max-clips", 3,
                        "--seed", 2, "--out", out_json, "--also", f"again={setup['clf']}")
    assert rc == 0, err
    res = json.loads(out_json.read_text())
    names = [(r["method"], r["label"]) for r in res["rows"]]
    assert names == [("ssvg", "sound=all"), ("ssvg", "sound=first"), ("ssvg", "sound=none"), ("audio-reactive-walk", None),
                     ("linear-interpolation", None), ("real-clips", None)]
    assert [r["model"]["sound"] for r in res["rows"][:3]] == ["all", "first", "none"]
    assert res["model"]["sha256"] == file_sha256(b / "ssvg.safetensors") == res["rows"][0]["model"]["sha256"]
    assert res["classifier"]["sha256"] == file_sha256(setup["clf"]) and res["generator"]["sha256"] == file_sha256(b / "generator.safetensors")
    assert res["seed"] == 2 and res["split"] == "test" and res["package_version"] and "table2" in res["command"]
    assert all(r["generator"] == str(b / "generator.safetensors") for r in res["rows"][:5]) and res["rows"][5]["generator"] is None
    assert all(r["results"]["num_fake"] == 3 for r in res["rows"])
    # every table twice (main classifier, then --also's): the rows, then consistency per class
    assert len([l for l in out.splitlines() if l.startswith("| ")]) == 2 * 2 * (1 + 6) and "ssvg (sound=none)" in out
    for r in res["rows"]:   # the same videos scored again by the same classifier give the same scores
        assert r["also"]["again"]["results"]["consistency"] == r["results"]["consistency"]
        classes = json.loads(Path(setup["data"], "synthscapes.json").read_text())["classes"]
        assert r["results"]["consistency_per_class"] and set(r["results"]["consistency_per_class"]) <= set(classes)
    rc, _, err = _cli(capsys, "bench", "table2", setup["data"], "--classifier", setup["clf"], "--model", b, "--out", out_json)
    _one_sentence(rc, err, "--overwrite")


def test_edit_cli(setup, capsys):
    out_json = setup["dir"] / "edit.json"
    rc, out, err = _cli(capsys, "bench", "edit", setup["data"], "--classifier", setup["clf"], "--model", setup["bundle"],
                        "--alpha", 0, 1, "--groups", "coarse", "--scenes", 3, "--out", out_json)
    assert rc == 0, err
    res = json.loads(out_json.read_text())
    assert [r["alpha"] for r in res["rows"]] == [0.0, 1.0] and res["groups"] == ["coarse"]
    assert res["rows"][0]["edit_success"] == 0 and res["rows"][0]["delta_p"] == 0
    assert res["model"]["sha256"] == file_sha256(setup["bundle"] / "ssvg.safetensors") and res["classifier"]["sha256"]
    assert "| 1 |" in out and "layout kept" in out


def test_run_scores_whole_clips_and_refuses_segments_longer_than_a_clip(setup, capsys):
    "--frames 64 --segments 1 scores each 4-s test clip whole; asking for more frames than a clip has is one sentence."
    log = setup["dir"] / "whole.jsonl"
    base = ["bench", "run", setup["data"], "--classifier", setup["clf"], "--method", "real-clips", "--log", log]
    assert _cli(capsys, *base)[0] == 0
    assert _cli(capsys, *base, "--frames", 64, "--segments", 1)[0] == 0
    split, whole = map(json.loads, log.read_text().splitlines())
    assert whole["results"]["num_fake"] * 4 == split["results"]["num_fake"]
    assert whole["results"]["fvd_metric"].endswith("_64f") and split["results"]["fvd_metric"].endswith("_16f")
    _one_sentence(*_cli(capsys, *base, "--frames", 64, "--segments", 2)[::2], "longer than the shortest test clip")


def test_the_python_api_takes_a_bundle(setup):
    "benchmark and SSVGMethod take the bundle itself: its ssvg file is recorded and its generator renders."
    from sound_video_gen.metrics.baselines import SSVGMethod
    from sound_video_gen.metrics.bench import benchmark
    from sound_video_gen.model.generation import GenerateOptions
    b = setup["bundle"]
    rec = benchmark(SSVGMethod(str(b), GenerateOptions(sound="first")), "test", setup["data"], setup["clf"], max_clips=4)
    assert rec["generator"] == str(b / "generator.safetensors") and rec["model"]["file"] == str(b / "ssvg.safetensors")
    assert rec["model"]["sound"] == "first" and rec["results"]["num_fake"] == 4
    with pytest.raises(UserError, match="needs a generator"):
        benchmark(SSVGMethod(str(b / "ssvg.safetensors")), "test", setup["data"], setup["clf"], max_clips=4)


def test_edit_uses_the_bundles_editor(setup, capsys, tmp_path):
    "bench edit scores the bundle's editor when it has one (--own-encoder: the model's E_a), and the scores differ."
    import shutil
    import torch
    from sound_video_gen.core import get_config
    from sound_video_gen.model.bundle import add_to_bundle
    from sound_video_gen.model.ssvg import SSVG, load_ssvg
    b = Path(shutil.copytree(setup["bundle"], tmp_path / "with-editor"))
    torch.manual_seed(5)
    model = load_ssvg(b / "ssvg.safetensors")
    add_to_bundle(b, "editor", SSVG(model.cfg).eval())
    runs = {}
    for name, extra in (("editor", []), ("own", ["--own-encoder"])):
        out_json = tmp_path / f"{name}.json"
        rc, _, err = _cli(capsys, "bench", "edit", setup["data"], "--classifier", setup["clf"], "--model", b,
                          "--alpha", 2, "--scenes", 3, "--out", out_json, *extra)
        assert rc == 0, err
        runs[name] = json.loads(out_json.read_text())
    assert runs["editor"]["model"]["sha256"] == file_sha256(b / "editor.safetensors")
    assert runs["own"]["model"]["sha256"] == file_sha256(b / "ssvg.safetensors")
    assert runs["editor"]["rows"][0]["delta_p"] != runs["own"]["rows"][0]["delta_p"]
