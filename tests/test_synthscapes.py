"SynthScapes generator: determinism, dataset folder, learnability and audio-visual coupling."
import json
import numpy as np
import pytest

from sound_video_gen.core import UserError
from sound_video_gen.data.clips import read_av, read_metadata, AVClipDataset
from sound_video_gen.data.synthscapes import CLASSES, generate_clip, make_synthscapes, scene_params, clip_seed

def test_classes():
    assert len(CLASSES) >= 8 and len(set(CLASSES)) == len(CLASSES)

@pytest.mark.parametrize("cls", CLASSES)
def test_deterministic_and_shapes(cls):
    a = generate_clip(cls, 5, seconds=1.0, size=(24, 32), fps=8, sr=8000)
    b = generate_clip(cls, 5, seconds=1.0, size=(24, 32), fps=8, sr=8000)
    assert a.frames.shape == (8, 24, 32, 3) and a.frames.dtype == np.uint8
    assert a.audio.shape == (8000,) and np.abs(a.audio).max() <= 0.9 + 1e-6
    assert a.motion.shape == (8,) and 0 <= a.motion.min() and a.motion.max() <= 1
    np.testing.assert_array_equal(a.frames, b.frames); np.testing.assert_array_equal(a.audio, b.audio)
    assert a.caption == b.caption and a.params == b.params
    c = generate_clip(cls, 6, seconds=1.0, size=(24, 32), fps=8, sr=8000)
    assert not np.array_equal(a.audio, c.audio)

def test_scene_is_resolution_independent():
    a, b = generate_clip("rain", 3, 1.0, 16, 8), generate_clip("rain", 3, 1.0, 48, 8)
    assert a.params == b.params and a.caption == b.caption
    np.testing.assert_array_equal(a.audio, b.audio); np.testing.assert_array_equal(a.motion, b.motion)

def test_bad_args():
    for kw in (dict(cls="lava"), dict(seconds=0), dict(size=2), dict(sr=100), dict(fps=0)):
        args = dict(cls="rain", seed=0, seconds=1.0, size=16, fps=8, sr=16000) | kw
        with pytest.raises(UserError): generate_clip(**args)

def test_make_folder(tmp_path):
    meta = make_synthscapes(tmp_path / "ds", classes=("rain", "volcano"), n_per_class=3, seconds=1.0, size=16, fps=8, progress=False)
    rows = read_metadata(meta)
    assert [r["id"] for r in rows] == ["rain_0000", "rain_0001", "rain_0002", "volcano_0000", "volcano_0001", "volcano_0002"]
    assert {r["split"] for r in rows} == {"train", "val", "test"}
    r = rows[0]
    assert r["seed"] == clip_seed(0, "rain", 0) and r["params"] == scene_params("rain", r["seed"])
    assert (r["n_frames"], r["fps"], r["sr"], r["width"]) == (8, 8.0, 16000, 16)
    frames, audio, fps, sr = read_av(tmp_path / "ds" / r["path"])
    clip = generate_clip("rain", r["seed"], 1.0, 16, 8)
    assert frames.shape == clip.frames.shape and fps == 8 and sr == 16000 and audio.shape[0] == 16000
    assert np.abs(frames.astype(float) - clip.frames).mean() < 6          # h264 at crf 18
    np.testing.assert_allclose(np.load(tmp_path / "ds" / r["motion_path"]), clip.motion)
    with pytest.raises(UserError, match="already holds"):
        make_synthscapes(tmp_path / "ds", classes=("rain",), n_per_class=1, seconds=1.0, size=16, fps=8, progress=False)
    # the same clips whatever the class selection; two workers give the same files
    meta2 = make_synthscapes(tmp_path / "ds2", classes=("volcano",), n_per_class=3, seconds=1.0, size=16, fps=8, progress=False, workers=2)
    assert [r["seed"] for r in read_metadata(meta2)] == [r["seed"] for r in rows[3:]]

@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("ss") / "ds"
    make_synthscapes(root, n_per_class=12, seconds=2.0, size=32, fps=8, seed=1, workers=2, progress=False)
    return root

def test_learnable_and_coupled(small_set):
    "Class from sound alone and from frames alone (trivial classifiers); motion driver vs frame-difference energy."
    from sound_video_gen.data.synthscapes import coupling_report
    r = coupling_report(small_set)
    print(json.dumps(r, indent=1))
    assert r["n_test"] == 18 and r["chance"] == pytest.approx(1 / 9)
    assert r["audio_logistic"] >= 0.8 and r["audio_nearest_centroid"] >= 0.7
    assert r["video_logistic"] >= 0.6 and r["video_nearest_centroid"] >= 0.4
    assert set(r["motion_corr"]) == set(CLASSES)
    assert min(r["motion_corr"].values()) > 0.3, r["motion_corr"]

def test_classifiers_are_not_trivially_right():
    "The classifiers score chance on features that carry no class information."
    from sound_video_gen.data.synthscapes import logistic_accuracy, nearest_centroid_accuracy
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(400, 10)), np.array(list("abcd") * 100)
    assert nearest_centroid_accuracy(X[:300], y[:300], X[300:], y[300:]) < 0.4
    assert logistic_accuracy(X[:300], y[:300], X[300:], y[300:]) < 0.4
    X[:, 0] += (y == "a") * 5
    assert logistic_accuracy(X[:300], y[:300], X[300:], y[300:]) > 0.4

def test_labels_agree_across_splits(tmp_path):
    "A split that lacks a class keeps the folder's label numbering."
    make_synthscapes(tmp_path / "d", classes=("rain", "wind"), n_per_class=1, seconds=0.5, size=16, fps=8, progress=False)
    ds = AVClipDataset(tmp_path / "d", n_frames=2, size=16, split="train", cache_dir=False)
    assert ds.classes == ["rain", "wind"] and ds.labels() == [0, 1]
    with pytest.raises(UserError, match="no usable clips"): AVClipDataset(tmp_path / "d", split="val", cache_dir=False)

def test_loader_returns_motion(small_set):
    ds = AVClipDataset(small_set, n_frames=8, size=32, split="val", cache_dir=False)
    s = ds[0]
    assert s["has_motion"] and s["caption"] and s["motion"].shape == (8,)
    row = [r for r in read_metadata(small_set / "metadata.csv") if r["id"] == s["id"]][0]
    np.testing.assert_allclose(s["motion"].numpy(), np.load(small_set / row["motion_path"])[:8])
    ds2 = AVClipDataset(small_set, n_frames=4, fps=4, size=32, split="val", cache_dir=False)
    np.testing.assert_allclose(ds2[0]["motion"].numpy(), np.load(small_set / row["motion_path"])[1:8:2])  # 8 -> 4 fps: frames 1, 3, 5, 7

def test_cli(tmp_path, capsys):
    from sound_video_gen.cli import dispatch
    from sound_video_gen.core import run_cli
    args = ["synthscapes", str(tmp_path / "d"), "--classes", "rain,wind", "--n-per-class", "2", "--seconds", "0.5",
            "--size", "16x24", "--fps", "8", "--quiet"]
    assert run_cli(dispatch, args) == 0
    assert "wrote 4 clips (2 classes)" in capsys.readouterr().out
    rows = read_metadata(tmp_path / "d" / "metadata.csv")
    assert [(r["height"], r["width"], r["n_frames"]) for r in rows] == [(16, 24, 4)] * 4
    assert run_cli(dispatch, args) == 2 and "already holds a dataset" in capsys.readouterr().err
    assert run_cli(dispatch, args + ["--overwrite"]) == 0
    assert run_cli(dispatch, ["synthscapes", str(tmp_path / "e"), "--classes", "lava"]) == 2
    assert "unknown SynthScapes classes" in capsys.readouterr().err
    assert run_cli(dispatch, ["synthscapes", str(tmp_path / "e"), "--size", "big"]) == 2
    assert not (tmp_path / "e").exists()

def test_44k_and_paper_mel(tmp_path):
    "Any sample rate: a 44.1-kHz clip goes through the paper's mel front end (44.1 kHz, 128 mels)."
    from sound_video_gen.core import get_config
    from sound_video_gen.audio import load_mel
    from sound_video_gen.data.clips import write_video
    c = generate_clip("birdsong", 2, seconds=1.0, size=16, fps=8, sr=44100)
    assert c.audio.shape == (44100,) and c.sr == 44100
    write_video(tmp_path / "b.mp4", c.frames, 8, c.audio, 44100)
    mel = load_mel(tmp_path / "b.mp4", get_config("mel-paper"))
    assert mel.shape[0] == 128 and 86 <= mel.shape[1] <= 90      # 1 s at hop 512 (+ AAC padding)
    assert mel.max(1).values.argmax() >= 55                       # the loudest bin is a chirp above ~2 kHz (slaney band 55)

@pytest.mark.slow
def test_default_resolution_coupling(tmp_path):
    "At the default size and rate (64x64, 16 fps, 4 s), 20 clips a class: strong coupling and accurate classifiers."
    from sound_video_gen.data.synthscapes import coupling_report
    make_synthscapes(tmp_path / "d", n_per_class=20, workers=2, progress=False, seed=3)
    r = coupling_report(tmp_path / "d")
    print(json.dumps(r))
    assert r["audio_logistic"] >= 0.9 and r["video_logistic"] >= 0.8
    assert min(r["motion_corr"].values()) > 0.6, r["motion_corr"]
