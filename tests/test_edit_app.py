"Sound-guided image and video editing (apps.editing) and the edit-image / edit-video commands: bad input, α = 0, group masking, outputs."
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from sound_video_gen.core import UserError, get_config, run_cli
from sound_video_gen.cli import dispatch
from sound_video_gen.generators.factory import create_generator
from sound_video_gen.model.ssvg import SSVG
from sound_video_gen.apps.pipeline import SoundToVideo
from sound_video_gen.model.bundle import make_bundle
from sound_video_gen.apps.editing import (ImageEditor, edit_image, edit_video, invert_images, load_image, read_video,
                                          sound_offset)
from sound_video_gen.data.clips import probe_video, write_video


def _one_sentence(msg: str):
    assert "\n" not in msg and msg.endswith(".") and len(msg) < 300 and "Traceback" not in msg, msg


def _sound(path, seconds=2.0, sr=22050):
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, 0.3 * np.sin(2 * np.pi * (200 + 300 * t) * t) + 0.2 * (np.sin(2 * np.pi * 3 * t) > 0.9), sr)
    return path


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    G = create_generator("stylegan2-tiny", seed=0).eval()
    torch.manual_seed(0)
    return make_bundle(tmp_path_factory.mktemp("b") / "tiny", G, SSVG(get_config("ssvg-tiny").for_generator(G)).eval())


@pytest.fixture(scope="module")
def pipe(bundle):
    torch.set_num_threads(1)
    return SoundToVideo.from_pretrained(bundle)


@pytest.fixture(scope="module")
def files(tmp_path_factory, pipe):
    d = tmp_path_factory.mktemp("f")
    w0, w1 = pipe.initial("random", 0.7, 1), pipe.initial("random", 0.7, 2)
    traj = w0 + torch.linspace(0, 1, 10)[:, None, None] * (w1 - w0)
    with torch.no_grad(): clip = pipe.G.synthesis(traj, noise_mode="const")
    write_video(d / "in.mp4", clip, fps=8)
    return {"dir": d, "sound": _sound(d / "s.wav"), "short": _sound(d / "short.wav", 0.75), "video": d / "in.mp4", "traj": traj}


# ---------------------------------------------------------------- load_image

def _save(path, arr, mode=None):
    (Image.fromarray(arr, mode) if mode else Image.fromarray(arr)).save(path)
    return path


@pytest.mark.parametrize("name, make, match", [
    ("missing.png", lambda p: None, "does not exist"),
    ("empty.png", lambda p: p.write_bytes(b""), "empty"),
    ("corrupt.png", lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200)), "not a readable image"),
    ("text.jpg", lambda p: p.write_text("hello"), "not a readable image"),
    ("dot.png", lambda p: _save(p, np.zeros((1, 1, 3), np.uint8)), "too small"),
    ("thin.png", lambda p: _save(p, np.zeros((8, 200, 3), np.uint8)), "too small"),
    ("huge.png", lambda p: Image.new("1", (9000, 100)).save(p), "shrink it first"),
    ("big.png", lambda p: Image.new("1", (7000, 7000)).save(p), "shrink it first"),
    ("float.tif", lambda p: Image.fromarray(np.random.rand(32, 32).astype(np.float32), "F").save(p), "floating-point"),
])
def test_load_image_refuses(tmp_path, name, make, match):
    p = tmp_path / name
    make(p)
    with pytest.raises(UserError, match=match) as e: load_image(p, 32)
    _one_sentence(str(e.value))


def test_load_image_truncated(tmp_path):
    _save(tmp_path / "ok.png", np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="corrupt or truncated") as e: load_image(tmp_path / "cut.png", 32)
    _one_sentence(str(e.value))


def test_load_image_converts(tmp_path):
    g = _save(tmp_path / "g.png", np.tile(np.arange(64, dtype=np.uint8)[None] * 4, (64, 1)))             # grayscale
    x = load_image(g, 32)
    assert x.shape == (1, 3, 32, 32) and torch.equal(x[0, 0], x[0, 1]) and torch.equal(x[0, 1], x[0, 2])
    rgba = np.zeros((40, 40, 4), np.uint8); rgba[..., 0] = 255                                          # red, fully transparent
    x = load_image(_save(tmp_path / "t.png", rgba, "RGBA"), 16)
    assert torch.allclose(x, torch.ones_like(x), atol=1e-3)                                             # white, not red or black
    rgba[..., 3] = 255
    x = load_image(_save(tmp_path / "o.png", rgba, "RGBA"), 16)
    assert x[0, 0].min() > 0.99 and x[0, 1].max() < -0.99                                               # opaque red stays red
    g16 = np.full((32, 32), 65535, np.uint16); g16[:, :16] = 0
    x = load_image(_save(tmp_path / "g16.png", g16), 32)
    assert x[0, :, :, :12].max() < -0.99 and x[0, :, :, 20:].min() > 0.99                               # full 16-bit range -> [-1, 1]
    pal = Image.fromarray(np.zeros((32, 32), np.uint8), "P"); pal.info["transparency"] = 0; pal.save(tmp_path / "p.png", transparency=0)
    assert load_image(tmp_path / "p.png", 16).min() > 0.99                                              # transparent palette -> white
    wide = np.zeros((20, 60, 3), np.uint8); wide[:, 20:40] = 255                                        # only the middle square is white
    assert load_image(_save(tmp_path / "w.png", wide), 20).min() > 0.99


def test_load_image_size_checked(tmp_path):
    p = _save(tmp_path / "a.png", np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(UserError, match="size must be"): load_image(p, 0)


# ---------------------------------------------------------------- edit_image

def test_alpha_zero_returns_the_input_latent(pipe, files):
    lat = pipe.initial("random", 0.7, 5)[0]
    e = edit_image(pipe, files["sound"], latent=lat, alpha=0.0, start=0.5)
    assert torch.equal(e.w_hat, e.w) and torch.equal(e.w[0], lat) and np.array_equal(e.after, e.before)
    assert e.before.shape == (32, 32, 3) and e.before.dtype == np.uint8


@pytest.mark.parametrize("groups", [["coarse"], ["mid"], ["fine"], ["coarse", "fine"]])
def test_group_masking_touches_only_those_layers(pipe, files, groups):
    ed = ImageEditor(pipe, files["sound"], seed=3, start=0.5)
    e = ed(1.5, groups)
    lg = pipe.model.encoder.groups
    for g, (a, b) in lg.items():
        if g in groups: assert torch.allclose(e.w_hat[:, a:b], e.w[:, a:b] + 1.5 * e.dw[:, a:b])
        else: assert torch.equal(e.w_hat[:, a:b], e.w[:, a:b])
    assert not torch.equal(e.w_hat, e.w)


def test_editor_rerenders_one_frame_and_matches_edit_image(pipe, files):
    ed = ImageEditor(pipe, files["sound"], seed=4, start=1.0)
    calls = []
    orig = pipe.G.synthesis.forward
    pipe.G.synthesis.forward = lambda *a, **k: (calls.append(1), orig(*a, **k))[1]
    try: e = ed(0.7, ["mid"])
    finally: del pipe.G.synthesis.forward
    assert len(calls) == 1
    again = edit_image(pipe, files["sound"], seed=4, start=1.0, alpha=0.7, groups=["mid"])
    assert np.array_equal(e.after, again.after) and e.time == again.time


def test_sound_window_follows_start(pipe, files):
    d0, _, t0 = sound_offset(pipe, files["sound"], 0.0)
    d1, _, t1 = sound_offset(pipe, files["sound"], 1.2)
    from sound_video_gen.apps.pipeline import WindowStream
    lefts = WindowStream(pipe.plan(files["sound"]), pipe.mel_cfg).lefts
    assert t0 == int(torch.nonzero(lefts >= 0)[0]) / pipe.fps                      # start 0: the first whole window
    assert abs(t1 - 1.2) < 1 / pipe.fps and not torch.equal(d0, d1)
    with pytest.raises(UserError, match="past the end") as e: sound_offset(pipe, files["sound"], 5.0)
    _one_sentence(str(e.value))


def test_edit_image_from_a_picture(pipe, files, tmp_path):
    p = _save(tmp_path / "pic.png", np.random.default_rng(1).integers(0, 256, (48, 40, 3), dtype=np.uint8))
    e = edit_image(pipe, files["sound"], image=p, invert="projector", steps=2, alpha=1.0)
    assert e.image.shape == (32, 32, 3) and e.side_by_side().shape == (32, 96, 3)


@pytest.mark.parametrize("kw, match", [
    ({}, "exactly one"), ({"seed": 1, "latent": torch.zeros(128)}, "exactly one"),
    ({"seed": 1, "alpha": float("nan")}, "alpha must be"), ({"seed": 1, "groups": ["top"]}, "groups must name"),
    ({"seed": 1, "start": -1.0}, "start must be"), ({"image": torch.zeros(1, 3, 32, 32), "invert": "encoder"}, "no image encoder"),
    ({"image": torch.zeros(1, 3, 32, 32), "invert": "magic"}, "invert must be"),
])
def test_edit_image_bad_arguments(pipe, files, kw, match):
    kw = {"alpha": 1.0, **kw}
    with pytest.raises(UserError, match=match) as e: edit_image(pipe, files["sound"], **kw)
    _one_sentence(str(e.value))


def test_invert_images_checks_a_callables_output(pipe):
    with pytest.raises(UserError, match="returned latents"): invert_images(pipe, torch.zeros(2, 3, 32, 32), lambda x: torch.zeros(1, 3))


# ---------------------------------------------------------------- edit_video

def _lookup(files):
    return lambda x: files["traj"][:len(x)]


def test_edit_video_writes_frames_fps_and_sound(pipe, files, tmp_path):
    out = tmp_path / "o.mp4"
    r = edit_video(pipe, files["video"], files["sound"], alpha=1.0, out=out, invert=_lookup(files), reconstruct=True)
    info = probe_video(out)
    assert (info["n_frames"], info["fps"], info["has_audio"]) == (10, 8.0, True)
    assert r.frames.shape == (10, 32, 32, 3) and r.reconstruction.shape == r.frames.shape
    assert abs(info["duration"] - 10 / 8) < 0.1
    frames, fps = read_video(out, 32)
    assert len(frames) == 10 and fps == 8.0


def test_edit_video_alpha_zero_is_the_input(pipe, files):
    r = edit_video(pipe, files["video"], files["sound"], alpha=0.0, smooth=0, invert=_lookup(files))
    assert torch.equal(r.w_hat, r.ws) and torch.equal(r.ws, files["traj"])


@pytest.mark.parametrize("mode", ["offsets", "recurrent"])
def test_edit_video_modes_mask_groups(pipe, files, mode):
    r = edit_video(pipe, files["video"], files["sound"], alpha=2.0, groups=["coarse"], mode=mode, invert=_lookup(files))
    a, b = pipe.model.encoder.groups["coarse"]
    assert torch.equal(r.w_hat[:, b:], r.ws[:, b:]) and not torch.equal(r.w_hat[:, a:b], r.ws[:, a:b])


def test_edit_video_smoothing_calms_jitter(pipe, files):
    jitter = lambda x: files["traj"][:len(x)] + 0.5 * torch.randn(len(x), *files["traj"].shape[1:], generator=torch.Generator().manual_seed(0))
    raw = edit_video(pipe, files["video"], files["sound"], smooth=0, invert=jitter)
    calm = edit_video(pipe, files["video"], files["sound"], smooth=2.0, invert=jitter)
    step = lambda w: w.diff(dim=0).norm(dim=-1).mean()
    assert step(calm.ws) < step(raw.ws) / 2


def test_edit_video_short_sound_cuts_the_video(pipe, files, tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = edit_video(pipe, files["video"], files["short"], out=tmp_path / "s.mp4", invert=_lookup(files))
    assert [str(w.message) for w in caught] == ["the sound covers 6 of the video's 10 frames; the edited video stops with the sound."]
    assert len(r.frames) == 6 and probe_video(tmp_path / "s.mp4")["n_frames"] == 6


def test_edit_video_reuses_given_latents(pipe, files):
    r = edit_video(pipe, files["video"], files["sound"], smooth=0, alpha=0.0, latents=files["traj"])
    assert torch.equal(r.ws, files["traj"]) and r.frames.shape == (10, 32, 32, 3)
    with pytest.raises(UserError, match="latents must be") as e: edit_video(pipe, files["video"], files["sound"], latents=files["traj"][:4])
    _one_sentence(str(e.value))


def test_edit_video_with_the_projector(pipe, files):
    r = edit_video(pipe, files["video"], files["sound"], invert="projector", steps=1, max_frames=3)
    assert r.frames.shape == (3, 32, 32, 3)


@pytest.mark.parametrize("kw, match", [
    ({"mode": "loop"}, "mode must be"), ({"alpha": 11.0}, "alpha must be"), ({"groups": "everything"}, "groups must name"),
    ({"out": "x.avi"}, "must be an .mp4"), ({"smooth": -1.0}, "smooth must be"),
])
def test_edit_video_bad_arguments(pipe, files, kw, match):
    with pytest.raises(UserError, match=match) as e: edit_video(pipe, files["video"], files["sound"], invert=_lookup(files), **kw)
    _one_sentence(str(e.value))


def test_edit_video_bad_video(pipe, files, tmp_path):
    (tmp_path / "bad.mp4").write_bytes(b"\x00" * 100)
    with pytest.raises(UserError) as e: edit_video(pipe, tmp_path / "bad.mp4", files["sound"], invert=_lookup(files))
    _one_sentence(str(e.value))


# ---------------------------------------------------------------- the commands

def _cli(capsys, argv):
    rc = run_cli(dispatch, argv)
    return rc, capsys.readouterr()


@pytest.mark.parametrize("argv, match", [
    (["edit-image", "--seed", "1", "{d}/nope.wav", "-o", "{d}/o.png"], "does not exist"),
    (["edit-image", "{d}/nope.png", "{s}", "-o", "{d}/o.png"], "does not exist"),
    (["edit-image", "--seed", "1", "{s}", "-o", "{d}/o.png", "--alpha", "nan"], "finite number"),
    (["edit-image", "--seed", "1", "{s}", "-o", "{d}/o.png", "--alpha", "99"], "must be in"),
    (["edit-image", "--seed", "1", "{s}", "-o", "{d}/o.png", "--groups", "coarse,top"], "--groups takes"),
    (["edit-image", "--seed", "1", "{s}", "{s}", "-o", "{d}/o.png"], "SOUND only with --seed"),
    (["edit-image", "{s}", "-o", "{d}/o.png"], "give IMAGE and SOUND"),
    (["edit-image", "--seed", "1", "{s}", "-o", "{d}/o.jpg"], "must end in .png"),
    (["edit-image", "--seed", "1", "{s}", "-o", "{d}/exists.png"], "already exists"),
    (["edit-image", "--seed", "1", "{s}", "-o", "{d}/no/o.png"], "does not exist"),
    (["edit-video", "{d}/nope.mp4", "{s}", "-o", "{d}/o.mp4"], "does not exist"),
    (["edit-video", "{v}", "{s}", "-o", "{d}/o.mp4", "--mode", "loop"], "invalid choice"),
    (["edit-video", "{v}", "{s}", "-o", "{d}/exists.mp4"], "already exists"),
    (["edit-video", "{v}", "{s}", "-o", "{d}/o.mp4", "--groups", ""], "--groups takes"),
    (["edit-video", "{v}", "{s}", "-o", "{d}/o.mp4", "--model", "no-such-bundle"], "no bundle named"),
    (["edit-video", "{v}", "{s}", "-o", "{d}/o.mp4", "--max-frames", "2"], "asked for are shorter than one mel window"),
    (["edit-video", "{v}", "{s}", "-o", "{v}", "--overwrite"], "would destroy the input"),
])
def test_cli_errors_are_one_sentence(capsys, files, tmp_path, argv, match):
    (tmp_path / "exists.png").write_bytes(b"x"); (tmp_path / "exists.mp4").write_bytes(b"x")
    argv = [a.format(d=tmp_path, s=files["sound"], v=files["video"]) for a in argv]
    rc, cap = _cli(capsys, argv)
    assert rc == 2 and match in cap.err, cap.err
    assert len(cap.err.strip().splitlines()) == 1 and "Traceback" not in cap.err


def test_cli_edit_image_and_video(capsys, bundle, files, tmp_path):
    out = tmp_path / "e.png"
    rc, cap = _cli(capsys, ["edit-image", "--seed", "2", str(files["sound"]), "--model", str(bundle), "-o", str(out),
                            "--side-by-side", "--groups", "fine", "--start", "0.5"])
    assert rc == 0 and Image.open(out).size == (64, 32), cap.err
    pic = _save(tmp_path / "pic.png", np.zeros((40, 40, 3), np.uint8))
    rc, cap = _cli(capsys, ["edit-image", str(pic), str(files["sound"]), "--model", str(bundle), "-o", str(out),
                            "--overwrite", "--invert", "projector", "--steps", "1"])
    assert rc == 0 and Image.open(out).size == (32, 32), cap.err
    vout = tmp_path / "e.mp4"
    rc, cap = _cli(capsys, ["edit-video", str(files["video"]), str(files["sound"]), "--model", str(bundle), "-o", str(vout),
                            "--steps", "1", "--max-frames", "4", "--mode", "recurrent"])
    assert rc == 0, cap.err
    info = probe_video(vout)
    assert (info["n_frames"], info["fps"], info["has_audio"]) == (4, 8.0, True)
    assert not list(tmp_path.glob(".*")), "no temporary file left behind"


# ---------------------------------------------------------------- bench edit-video

@pytest.fixture(scope="module")
def bench_setup(tiny_bench):
    "The shared tiny SynthScapes-Bench setup (tests/conftest.py), with the bundle as a command-line string."
    return {**tiny_bench, "bundle": str(tiny_bench["bundle"])}


def test_bench_edit_video(bench_setup, capsys):
    import json
    s = bench_setup
    base = ["bench", "edit-video", s["data"], "--classifier", s["clf"], "--model", s["bundle"], "--clips", "3", "--steps", "1"]
    out = s["dir"] / "ev.json"
    rc, cap = _cli(capsys, base + ["--alpha", "0", "--out", str(out)])
    assert rc == 0, cap.err
    r = json.loads(out.read_text())
    assert r["consistency"] == r["consistency_reconstruction"] and r["layout_kept"] == r["layout_kept_reconstruction"]
    assert r["inversion"] == {"method": "projector", "steps": 1} and "bench edit-video" in r["command"] and r["n_clips"] == 3
    assert all(a != b for a, b in r["pairs"]) and "| edited (α = 0, anchor)" in cap.out   # anchor: the default mode
    rc, cap = _cli(capsys, base + ["--mode", "recurrent", "--groups", "fine", "--out", str(s["dir"] / "ev2.json")])
    assert rc == 0, cap.err
    r = json.loads((s["dir"] / "ev2.json").read_text())
    assert r["mode"] == "recurrent" and r["groups"] == ["fine"] and 0 <= r["layout_kept"] <= 1
    rc, cap = _cli(capsys, base + ["--out", str(out)])
    assert rc == 2 and "already exists" in cap.err and len(cap.err.strip().splitlines()) == 1
