"""Every command as a hostile user would run it: bad numbers, bad configs, bad paths and file kinds, bad results
files. Each case must end with one sentence on stderr (`error: …`), exit code 2, no traceback, and nothing written.
Property-based tests (hypothesis) cover the `--set` parser and config loading."""
import json
import math
import os
import stat
import string
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from sound_video_gen.cli import dispatch
from sound_video_gen.cli.common import merge, parse_sets
from sound_video_gen.core import UserError, run_cli
from sound_video_gen.audio import MelConfig


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    "A folder of ordinary and hostile inputs."
    d = tmp_path_factory.mktemp("hostile")
    import numpy as np, soundfile as sf
    sf.write(d / "tone.wav", (0.3 * np.sin(np.linspace(0, 800, 16000))).astype("float32"), 16000)
    (d / "a_file").write_text("x")
    os.mkfifo(d / "fifo.wav")
    os.mkfifo(d / "fifo.pkl")
    os.mkfifo(d / "fifo.jsonl")
    os.mkfifo(d / "fifo.json")
    (d / "list.json").write_text("[1, 2]")
    (d / "nan.json").write_text('{"config_class": "sound_video_gen.audio.MelConfig", "top_db": NaN}')
    (d / "pad.json").write_text('{"config_class": "sound_video_gen.audio.MelConfig", "pad_mode": "mirror-ish"}')
    (d / "nfft.json").write_text('{"config_class": "sound_video_gen.audio.MelConfig", "n_fft": 1073741824}')
    (d / "latin1.jsonl").write_bytes("caf\xe9\n".encode("latin-1"))
    (d / "notobj.jsonl").write_text("[1, 2, 3]\n")
    (d / "junk.pkl").write_bytes(b"\x80\x04not really a pickle")
    (d / "data").mkdir()
    # residue of the hostile-input run: malformed JSON in bundles and facts files, a lying generator, a 1 Hz sound
    deep = "[" * 100_000 + "]" * 100_000
    for name, content in {"notjson": b"{nope", "deep": deep.encode(), "binary": b"\xff\xfe\x00\x80", "latin1": '{"name": "caf\xe9"}'.encode("latin-1"),
                          "list": b"[1, 2]"}.items():
        (d / f"bundle_{name}").mkdir()
        (d / f"bundle_{name}" / "bundle.json").write_bytes(content)
        (d / f"facts_{name}.json").write_bytes(content)
    (d / "facts_nan.json").write_text('{"fvd": NaN}')
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file
    tiny = Path(__file__).parent / "data"
    with safe_open(str(tiny / "stylegan2-tiny.safetensors"), "pt") as f: meta = dict(f.metadata())
    with safe_open(str(tiny / "stylegan3-t-tiny.safetensors"), "pt") as f: meta["config"] = f.metadata()["config"]
    save_file(load_file(str(tiny / "stylegan2-tiny.safetensors")), str(d / "liar.safetensors"), metadata=meta)  # SG3 config, SG2 tensors
    (d / "header_not_json.safetensors").write_bytes((20).to_bytes(8, "little") + b"{not json at all!!!}")
    sf.write(d / "one_hz.wav", np.random.default_rng(0).uniform(-0.5, 0.5, 20).astype("float32"), 1)
    from PIL import Image
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(d / "picture.png")
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(d / "tiny.png")
    Image.fromarray(np.zeros((4, 9000, 3), np.uint8)).save(d / "sliver.png")
    Image.fromarray(np.random.default_rng(0).random((64, 64)).astype("float32"), mode="F").save(d / "float.tif")
    return d


def run(argv, capsys):
    code = run_cli(dispatch, [str(a) for a in argv])
    err = capsys.readouterr().err
    return code, err


def one_sentence(code, err):
    lines = [l for l in err.splitlines() if l.strip() and not l.startswith("warning:")]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err and "weights_only" not in err


# name -> argv builder (given the fixture folder d); `expect` is a piece of the message
CASES = {
    # numbers: non-finite, negative, zero, absurdly large
    "mel --seconds nan": (lambda d: ["mel", d / "tone.wav", "--seconds", "nan"], "finite"),
    "mel --fps 0": (lambda d: ["mel", d / "tone.wav", "--fps", "0"], "(0, 240]"),
    "mel --fps inf": (lambda d: ["mel", d / "tone.wav", "--fps", "inf"], "finite"),
    "generator --psi nan": (lambda d: ["generator", "stylegan2-tiny", "--grid", d / "g.png", "--psi", "nan"], "finite"),
    "generator --seed -1": (lambda d: ["generator", "stylegan2-tiny", "--grid", d / "g.png", "--seed", "-1"], "--seed"),
    "generator --n 100000": (lambda d: ["generator", "stylegan2-tiny", "--grid", d / "g.png", "--n", "100000"], "[1, 64]"),
    "synthscapes --seed -1": (lambda d: ["synthscapes", d / "ss", "--seed", "-1"], "--seed"),
    "synthscapes --size 20000": (lambda d: ["synthscapes", d / "ss", "--size", "20000"], "[8, 4096]"),
    "synthscapes --size 0x8": (lambda d: ["synthscapes", d / "ss", "--size", "0x8"], "[8, 4096]"),
    "synthscapes --seconds nan": (lambda d: ["synthscapes", d / "ss", "--seconds", "nan"], "finite"),
    "synthscapes --n-per-class 0": (lambda d: ["synthscapes", d / "ss", "--n-per-class", "0"], "--n-per-class"),
    "synthscapes --workers -1": (lambda d: ["synthscapes", d / "ss", "--workers", "-1"], "--workers"),
    "synthscapes --sr 10": (lambda d: ["synthscapes", d / "ss", "--sr", "10"], "--sr"),
    "train-clip --frames 100000": (lambda d: ["train-clip", d / "data", "--run-dir", d / "r", "--frames", "100000"], "[1, 4096]"),
    "train-clip --size 0": (lambda d: ["train-clip", d / "data", "--run-dir", d / "r", "--size", "0"], "--size"),
    "train-clip --workers -1": (lambda d: ["train-clip", d / "data", "--run-dir", d / "r", "--workers", "-1"], "--workers"),
    "train-clip --lr inf": (lambda d: ["train-clip", d / "data", "--run-dir", d / "r", "--lr", "inf"], "finite"),
    "train-clip --lr 0": (lambda d: ["train-clip", d / "data", "--run-dir", d / "r", "--lr", "0"], "--lr"),
    "train-clip --threads 0": (lambda d: ["train-clip", d / "data", "--run-dir", d / "r", "--threads", "0"], "--threads"),
    "train-clip --batch-size 0": (lambda d: ["train-clip", d / "data", "--run-dir", d / "r", "--batch-size", "0"], "--batch-size"),
    "train-ssvg --seed 1e99": (lambda d: ["train-ssvg", d / "data", "--run-dir", d / "r", "--seed", "1e99"], "integer"),
    "train-ssvg --set lr_encoder=NaN": (lambda d: ["train-ssvg", d / "data", "--run-dir", d / "r", "--set", "lr_encoder=NaN"], "finite"),
    "train-ssvg --set betas=[0.5,2]": (lambda d: ["train-ssvg", d / "data", "--run-dir", d / "r", "--set", "betas=[0.5,2]"], "betas"),
    "train-audio-clip --set w_text=-1": (lambda d: ["train-audio-clip", d / "data", "--run-dir", d / "r", "--set", "w_text=-1"], "w_text"),
    "bench run --max-clips 1": (lambda d: ["bench", "run", d / "data", "--classifier", d / "c", "--method", "noise", "--max-clips", "1"], "--max-clips"),
    "bench train --max-steps 0": (lambda d: ["bench", "train", d / "data", "--run-dir", d / "r", "--max-steps", "0"], "--max-steps"),
    "landscape-cut --clip-seconds 0": (lambda d: ["data", "landscape-cut", d / "data", "--out", d / "o", "--clip-seconds", "0"], "--clip-seconds"),
    "landscape-cut --sr -5": (lambda d: ["data", "landscape-cut", d / "data", "--out", d / "o", "--sr", "-5"], "--sr"),
    "landscape-download --max-height 0": (lambda d: ["data", "landscape-download", d / "a_file", "--out", d / "o", "--max-height", "0"], "--max-height"),
    "generate --fps nan": (lambda d: ["generate", d / "tone.wav", "--fps", "nan"], "finite"),
    "generate --seconds -1": (lambda d: ["generate", d / "tone.wav", "--seconds", "-1"], "--seconds"),
    "generate --batch-size 0": (lambda d: ["generate", d / "tone.wav", "--batch-size", "0"], "--batch-size"),
    # configs: not an object, NaN, bad enum, sizes that would allocate without limit
    "mel --config list.json": (lambda d: ["mel", d / "tone.wav", "--config", d / "list.json", "-o", d / "m.png"], "JSON object"),
    "mel --config NaN field": (lambda d: ["mel", d / "tone.wav", "--config", d / "nan.json", "-o", d / "m.png"], "finite"),
    "mel --config bad pad_mode": (lambda d: ["mel", d / "tone.wav", "--config", d / "pad.json", "-o", d / "m.png"], "pad_mode"),
    "mel --config huge n_fft": (lambda d: ["mel", d / "tone.wav", "--config", d / "nfft.json", "-o", d / "m.png"], "n_fft"),
    "mel --config missing.json": (lambda d: ["mel", d / "tone.wav", "--config", d / "missing.json", "-o", d / "m.png"], "does not exist"),
    "mel --config FIFO": (lambda d: ["mel", d / "tone.wav", "--config", d / "fifo.json", "-o", d / "m.png"], "not a regular file"),
    "train-clip --config list.json": (lambda d: ["train-clip", d / "data", "--run-dir", d / "r", "--config", d / "list.json"], "JSON object"),
    # paths and file kinds
    "mel FIFO input": (lambda d: ["mel", d / "fifo.wav"], "not a regular file"),
    "mel /dev/null": (lambda d: ["mel", "/dev/null"], "not a regular file"),
    "mel folder input": (lambda d: ["mel", d / "data"], "folder"),
    "mel output parent is a file": (lambda d: ["mel", d / "tone.wav", "-o", d / "a_file" / "m.png"], "is a file, not a folder"),
    "mel output is a folder": (lambda d: ["mel", d / "tone.wav", "-o", d / "data.png"] if False else ["mel", d / "tone.wav", "-o", d / "data"], "must end in"),
    "generate FIFO input": (lambda d: ["generate", d / "fifo.wav", "-o", d / "v.mp4"], "not a regular file"),
    "generate output parent is a file": (lambda d: ["generate", d / "tone.wav", "-o", d / "a_file" / "v.mp4"], "is a file, not a folder"),
    "generator FIFO pickle": (lambda d: ["generator", d / "fifo.pkl", "--grid", d / "g.png"], "not a regular file"),
    "generator junk .pkl": (lambda d: ["generator", d / "junk.pkl", "--grid", d / "g.png"], "not a readable network pickle"),
    "generator grid parent is a file": (lambda d: ["generator", "stylegan2-tiny", "--grid", d / "a_file" / "g.png"], "is a file, not a folder"),
    "train-clip run dir is a file": (lambda d: ["train-clip", d / "data", "--run-dir", d / "a_file"], ""),
    "bench table FIFO": (lambda d: ["bench", "table", d / "fifo.jsonl"], "not a regular file"),
    "bench table non-UTF-8": (lambda d: ["bench", "table", d / "latin1.jsonl"], "UTF-8"),
    "bench table non-object lines": (lambda d: ["bench", "table", d / "notobj.jsonl"], "not an object"),
    "bench run ssvg without --model": (lambda d: ["bench", "run", d / "data", "--classifier", d / "c", "--method", "ssvg"], "--model"),
    "bench run --beta nan": (lambda d: ["bench", "run", d / "data", "--classifier", d / "c", "--method", "ssvg", "--model", d / "m", "--beta", "nan"], "finite"),
    "bench run --sound for a baseline": (lambda d: ["bench", "run", d / "data", "--classifier", d / "c", "--method", "noise", "--sound", "none"], "ssvg only"),
    "bench edit --alpha inf": (lambda d: ["bench", "edit", d / "data", "--classifier", d / "c", "--model", d / "m", "--alpha", "inf"], "finite"),
    "bench edit --model FIFO": (lambda d: ["bench", "edit", d / "data", "--classifier", d / "c", "--model", d / "fifo.pkl"], "bundle"),
    "bench table2 --out folder": (lambda d: ["bench", "table2", d / "data", "--classifier", d / "c", "--model", d / "m", "--out", d], ".json"),
    # outputs where nothing can be written, and a bundle output that is a file
    "generate -o under /proc": (lambda d: ["generate", d / "tone.wav", "-o", "/proc/svg-test.mp4", "--quiet"], "cannot write /proc/svg-test.mp4"),
    "edit-image -o under /proc": (lambda d: ["edit-image", d / "tone.wav", "--seed", "1", "-o", "/proc/svg-test.png"], "cannot write"),
    "generator --grid under /proc": (lambda d: ["generator", "stylegan2-tiny", "--grid", "/proc/svg-test.png"], "cannot write"),
    "bundle under /proc": (lambda d: ["bundle", "/proc/svg-test", *BUNDLE_FROM_DEMO], "cannot write the bundle"),
    "bundle output is a file": (lambda d: ["bundle", d / "a_file", *BUNDLE_FROM_DEMO, "--overwrite"], "a bundle is written as a folder"),
    "bundle --overwrite on a folder that is not a bundle": (lambda d: ["bundle", d, *BUNDLE_FROM_DEMO, "--overwrite"], "not a bundle"),
    # malformed JSON: bundle cards, facts and scores files
    **{f"generate with a {k} bundle.json": (lambda d, k=k: ["generate", d / "tone.wav", "-o", d / "v.mp4", "--model", d / f"bundle_{k}"], msg)
       for k, msg in {"notjson": "not valid JSON", "deep": "nested too deeply", "binary": "not a UTF-8", "latin1": "not a UTF-8",
                      "list": "not a sound_video_gen.bundle/1 card"}.items()},
    **{f"bundle --{flag} {k}": (lambda d, k=k, flag=flag: ["bundle", d / "nb", *BUNDLE_FROM_DEMO, f"--{flag}", d / f"facts_{k}.json"], msg)
       for flag in ("scores", "training")
       for k, msg in {"notjson": "not valid JSON", "deep": "nested too deeply", "binary": "not a UTF-8", "list": "must hold a JSON object",
                      "nan": "NaN is not a JSON number"}.items()},
    "bundle --scores FIFO": (lambda d: ["bundle", d / "nb", *BUNDLE_FROM_DEMO, "--scores", d / "fifo.json"], "not a regular file"),
    # generator files that are not what they say
    "generator header not JSON": (lambda d: ["generator", d / "header_not_json.safetensors", "--grid", d / "g.png"], "not a safetensors"),
    "generator liar": (lambda d: ["generator", d / "liar.safetensors", "--grid", d / "g.png"], "does not fit StyleGAN3Generator"),
    "train-ssvg --generator liar": (lambda d: ["train-ssvg", d / "data", "--run-dir", d / "r", "--generator", d / "liar.safetensors"],
                                    "does not fit"),
    # values that used to hang or slip through
    "synthscapes --splits nan,1,1": (lambda d: ["synthscapes", d / "ss", "--splits", "nan,1,1"], "three fractions"),
    "generate a 1 Hz sound": (lambda d: ["generate", d / "one_hz.wav", "-o", d / "v.mp4", "--quiet"], "stored at 1 Hz"),
    "bench edit --scenes huge": (lambda d: ["bench", "edit", d / "data", "--classifier", d / "c", "--model", d / "m", "--scenes", "1000000"],
                                 "[1, 1024]"),
    "bench edit thousands of --alpha": (lambda d: ["bench", "edit", d / "data", "--classifier", d / "c", "--model", d / "m", "--alpha",
                                                   *[str(i / 1000) for i in range(2000)]], "at most 64 values"),
    # unclear messages that now name the fault
    "generator --psi -1e30": (lambda d: ["generator", "stylegan2-tiny", "--grid", d / "g.png", "--psi", "-1e30"], "must be in [-2, 2]"),
    "synthscapes --splits -1,1,1": (lambda d: ["synthscapes", d / "ss", "--splits", "-1,1,1"], "three fractions"),
    "generate a PNG as the sound": (lambda d: ["generate", d / "picture.png", "-o", d / "v.mp4"], "is an image, not a sound"),
    "train-generator a file as the dataset": (lambda d: ["train-generator", d / "a_file", "--run-dir", d / "r"], "is a file, not a folder"),
    "train-generator --generator mel-paper": (lambda d: ["train-generator", d / "data", "--run-dir", d / "r", "--generator", "mel-paper"],
                                              "is a MelConfig, not a generator config"),
    # step counts and options a command would ignore
    "train-clip --set warmup_steps=-1": (lambda d: ["train-clip", d / "data", "--run-dir", d / "r", "--set", "warmup_steps=-1"], "warmup_steps=-1 must be >= 0"),
    "bench run --method noise --generator": (lambda d: ["bench", "run", d / "data", "--classifier", d / "c", "--method", "noise",
                                                        "--generator", "stylegan2-64"], "would ignore --generator"),
    # images that edit-image refuses, and now invert too
    **{f"invert {n}": (lambda d, n=n: ["invert", d / n, "-o", d / "w.safetensors"], msg)
       for n, msg in {"tiny.png": "too small", "sliver.png": "8192 px a side", "float.tif": "floating-point image"}.items()},
    # train-demo --dry-run checks its folders as a real run would
    "train-demo --run-dir a file": (lambda d: ["train-demo", "--run-dir", d / "a_file", "--dry-run"], "not a folder"),
    "train-demo --run-dir /dev/null": (lambda d: ["train-demo", "--run-dir", "/dev/null", "--dry-run"], "not a folder"),
    "train-demo --run-dir under /proc": (lambda d: ["train-demo", "--run-dir", "/proc/svg-test", "--dry-run"], "cannot be written"),
    "train-demo --data a file": (lambda d: ["train-demo", "--run-dir", d / "rd", "--data", d / "a_file", "--dry-run"], "not a folder"),
    "train-demo --data a FIFO": (lambda d: ["train-demo", "--run-dir", d / "rd", "--data", d / "fifo.wav", "--dry-run"], "not a folder"),
}
DEMO = Path(__file__).resolve().parent.parent / "sound_video_gen" / "pretrained" / "demo"
BUNDLE_FROM_DEMO = ["--model", DEMO / "ssvg.safetensors", "--generator", DEMO / "generator.safetensors"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_sentence(name, files, capsys):
    build, expect = CASES[name]
    before = sorted(p.name for p in files.iterdir())
    code, err = run(build(files), capsys)
    one_sentence(code, err)
    assert expect in err, err
    assert sorted(p.name for p in files.iterdir()) == before   # nothing written, nothing half-written
    assert stat.S_ISFIFO((files / "fifo.wav").stat().st_mode)  # and no FIFO was replaced


def test_run_dir_whose_parent_is_a_file(tmp_path):
    from sound_video_gen.train.clip import ClipTrainConfig
    from sound_video_gen.train.common import DistEnv, RunDir
    import torch
    (tmp_path / "f").write_text("x")
    with pytest.raises(UserError, match="is a file"):
        RunDir(tmp_path / "f" / "run", ClipTrainConfig(), DistEnv(device=torch.device("cpu")))


def test_outputs_follow_the_umask(tmp_path):
    from sound_video_gen.core import atomic_write_text
    old = os.umask(0o027)
    try: p = atomic_write_text(tmp_path / "out.json", "{}")
    finally: os.umask(old)
    assert stat.S_IMODE(p.stat().st_mode) == 0o640
    p2 = atomic_write_text(tmp_path / "out2.json", "{}")
    assert stat.S_IMODE(p2.stat().st_mode) == 0o666 & ~old


def test_hostile_mel_configs_are_refused():
    for kw in (dict(n_fft=2**30), dict(window_frames=10**7), dict(sample_rate=10**9), dict(pad_mode="wrap")):
        with pytest.raises(UserError, match="invalid MelConfig"): MelConfig(**kw)


def test_hostile_generator_configs_are_refused():
    from sound_video_gen.generators.factory import create_generator
    for name, kw in (("stylegan2-tiny", dict(channel_base=2**30)), ("stylegan2-tiny", dict(channel_max=10**6)),
                     ("stylegan3-t-tiny", dict(z_dim=10**6)), ("stylegan3-t-tiny", dict(num_layers=10**4))):
        with pytest.raises(UserError, match="invalid StyleGAN"): create_generator(name, **kw)


# ----------------------------------------------------------------------------------------------------------
# Property-based: the --set parser and config loading

keys = st.text(string.ascii_lowercase + "_", min_size=1, max_size=8)
values = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False, width=32),
                   st.booleans(), st.text(string.ascii_letters, max_size=6))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.lists(keys, min_size=1, max_size=3).map(".".join), values, max_size=6))
def test_parse_sets_round_trips_dotted_keys(pairs):
    # keys where one is a prefix path of another ("a" and "a.b") cannot both hold values: skip those draws
    ks = list(pairs)
    if any(a != b and b.startswith(a + ".") for a in ks for b in ks): return
    out = parse_sets([f"{k}={json.dumps(v)}" for k, v in pairs.items()])
    for k, v in pairs.items():
        node = out
        for part in k.split("."): node = node[part]
        assert node == v or (isinstance(v, float) and math.isclose(node, v, rel_tol=1e-6))


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=30))
def test_parse_sets_never_crashes(text):
    try: parse_sets([text])
    except UserError: pass


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(["n_fft", "hop_length", "n_mels", "top_db", "power", "pad_mode", "window_frames",
                                        "sample_rate", "f_min", "clip_frames", "bogus"]),
                       st.one_of(st.integers(-10**12, 10**12), st.floats(), st.text(max_size=5), st.none(), st.booleans()),
                       max_size=4))
def test_config_from_dict_is_either_valid_or_one_user_error(d):
    try: cfg = MelConfig.from_dict(d)
    except UserError: return
    assert 8 <= cfg.n_fft <= 65_536 and 1 <= cfg.hop_length <= cfg.n_fft and math.isfinite(cfg.top_db)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(["model", "lr_encoder", "betas", "w_reg", "max_steps", "nonsense"]),
                       st.one_of(st.floats(), st.integers(-5, 5), st.lists(st.floats(), max_size=3), st.dictionaries(keys, values, max_size=2)),
                       max_size=3))
def test_training_config_from_merged_sets_is_valid_or_one_user_error(over):
    from sound_video_gen.train.ssvg import SSVGTrainConfig
    try: cfg = SSVGTrainConfig.from_dict(merge(SSVGTrainConfig().to_dict(), over))
    except UserError: return
    assert math.isfinite(cfg.lr_encoder) and cfg.lr_encoder > 0 and all(0 <= b < 1 for b in cfg.betas)


def test_max_steps_zero_writes_nothing_and_says_so(files, capsys):
    for argv in (["train-generator", files / "data", "--run-dir", files / "r0", "--max-steps", "0"],
                 ["train-clip", files / "data", "--run-dir", files / "r0", "--max-steps", "0"]):
        assert run_cli(dispatch, [str(a) for a in argv]) == 0
        assert "nothing to do: --max-steps 0 trains nothing" in capsys.readouterr().out
        assert not (files / "r0").exists()
