"Clip loader: writer round trip, time alignment of frames and audio windows, bad files, DataLoader workers."
import warnings
import av
import numpy as np
import pytest
import torch

from sound_video_gen.core import UserError
from sound_video_gen.audio import frame_windows
from sound_video_gen.core import get_config
from sound_video_gen.data.clips import (AVClipDataset, SkippedFileWarning, probe_video, read_av, read_frames,
                                        write_video, clip_mel)

FPS, SR, T = 16, 16000, 64
BEATS = (5, 17, 30, 41, 42, 55)

def beat_clip(path, fps=FPS, n=T, beats=BEATS, size=32, length=1):
    "A clip whose frames k..k+length-1 are white and whose sound clicks at their centre, for k in `beats`."
    frames = np.full((n, size, size, 3), 20, np.uint8)
    audio = np.random.default_rng(0).normal(0, 1e-3, int(n / fps * SR)).astype(np.float32)
    burst = np.random.default_rng(1).normal(0, 0.3, int(0.02 * SR)).astype(np.float32)
    for k in beats:
        frames[k:k + length] = 235
        c = int((k + length / 2) / fps * SR) - len(burst) // 2
        audio[c:c + len(burst)] += burst
    write_video(path, frames, fps, audio, SR)
    return frames, audio

def test_write_read_roundtrip(tmp_path):
    frames, audio = beat_clip(tmp_path / "b.mp4")
    info = probe_video(tmp_path / "b.mp4")
    assert (info["n_frames"], info["fps"], info["width"], info["has_audio"], info["audio_sr"]) == (T, FPS, 32, True, SR)
    f, a, fps, sr = read_av(tmp_path / "b.mp4", sr=SR)
    assert f.shape == frames.shape and np.abs(f.astype(float) - frames).max() < 8
    assert a.shape[0] == len(audio)                       # AAC block padding trimmed
    # the click sits where it was written: the sound is not delayed by the AAC encoder
    env = np.convolve(np.abs(a.numpy()), np.ones(160) / 160, "same")
    first = np.argmax(env > 0.1)
    expect = int((BEATS[0] + 0.5) / FPS * SR) - int(0.01 * SR)
    assert abs(first - expect) < 80, (first, expect)
    # no temp files left behind, odd sizes work (4:4:4), atomic overwrite refusal
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.mp4"]
    write_video(tmp_path / "odd.mp4", np.zeros((3, 15, 17, 3), np.uint8), 10)
    assert read_frames(tmp_path / "odd.mp4").shape == (3, 15, 17, 3)
    with pytest.raises(UserError): write_video(tmp_path / "odd.mp4", np.zeros((3, 8, 8, 3), np.uint8), 10, overwrite=False)
    with pytest.raises(UserError): write_video(tmp_path / "x.mp4", np.zeros((0, 8, 8, 3), np.uint8), 10)
    # stereo sound, shorter than the video: padded with silence to the video's length
    st = np.stack([np.full(4000, 0.5, np.float32), np.full(4000, -0.5, np.float32)])
    write_video(tmp_path / "st.mp4", np.zeros((10, 16, 16, 3), np.uint8), 5, st, SR)
    f, a, fps, sr = read_av(tmp_path / "st.mp4")
    assert a.shape[0] == 2 * SR and a[:3000].abs().max() < 0.05 and a[-3000:].abs().max() < 0.01   # mono mix of +-0.5, then silence
    import av as _av
    with _av.open(str(tmp_path / "st.mp4")) as c: assert c.streams.audio[0].channels == 2
    # numpy scalars (e.g. read from a table) are fine; fps 29.97 is kept as 30000/1001
    write_video(tmp_path / "np.mp4", np.zeros((3, 8, 8, 3), np.uint8), np.float64(29.97), np.zeros(800, np.float32), np.int64(8000))
    assert probe_video(tmp_path / "np.mp4")["fps"] == pytest.approx(29.97, abs=1e-3)
    with pytest.raises(UserError): write_video(tmp_path / "x.mp4", np.zeros((3, 8, 8, 3), np.uint8), 0)
    # torch tensors in [-1, 1] (model output) are accepted
    write_video(tmp_path / "t.mp4", torch.ones(2, 3, 8, 8), 4)
    assert read_frames(tmp_path / "t.mp4").min() > 240

def test_read_frames_at_times(tmp_path):
    n = 20
    frames = np.zeros((n, 16, 16, 3), np.uint8); frames[:, :, :, 0] = (np.arange(n) * 12)[:, None, None]
    write_video(tmp_path / "r.mp4", frames, 10)
    got = read_frames(tmp_path / "r.mp4", times=[0.05, 0.55, 0.25, 0.0, 1.95, 5.0])
    idx = np.abs(got[:, 8, 8, 0].astype(int)[:, None] - (np.arange(n) * 12)[None]).argmin(1)
    assert idx.tolist() == [0, 5, 2, 0, 19, 19]   # unsorted times, t=0, past the end holds the last frame

def test_frame_windows_from_t0_match_a_later_slice():
    cfg = get_config("mel-synthscapes")
    mel = torch.rand(cfg.n_mels, 250)
    torch.testing.assert_close(frame_windows(mel, 40, 16, cfg, t0=0.0), frame_windows(mel, 40, 16, cfg))
    torch.testing.assert_close(frame_windows(mel, 20, 16, cfg, t0=10 / 16), frame_windows(mel, 30, 16, cfg)[10:])

def check_sync(bright, loud):
    "Every bright frame has a loud window centre; every frame two or more samples away from a bright one is quiet."
    thr = 0.65   # clicks reach ~0.9-1.0 of the clip's dB range, the noise floor ~0.35
    assert (loud[bright] > thr).all(), (bright, loud)
    near = bright.clone()
    near[1:] |= bright[:-1]; near[:-1] |= bright[1:]
    assert (loud[~near] < thr).all(), (bright, loud)
    return loud > thr

@pytest.mark.parametrize("fps,train", [(None, True), (None, False), (FPS / 3, True), (32, False), (32, True)])
def test_loader_alignment(tmp_path, fps, train):
    "Frames and audio windows carry the same beat at any start and any sampling rate."
    (tmp_path / "beat").mkdir()
    beat_clip(tmp_path / "beat" / "a.mp4", beats=BEATS + (8, 11, 14, 20, 23))
    ds = AVClipDataset(tmp_path, n_frames=12, fps=fps, size=16, train=train, cache_dir=tmp_path / "cache")
    torch.manual_seed(3)
    starts, n_bright = set(), 0
    for _ in range(8 if train else 1):
        s = ds[0]
        starts.add(s["start"])
        bright = s["frames"].mean((1, 2, 3)) > 0.5
        loud = s["audio"][:, 0, :, ds.width // 2].mean(1)       # the centre column of each frame's window
        exact = check_sync(bright, loud); n_bright += int(bright.sum())
        if fps != 32: assert torch.equal(bright, exact)           # sample centres inside source frames: one-to-one
    assert len(starts) > (3 if train else 0) and n_bright > 0
    if fps is None and not train: assert bright.nonzero().flatten().tolist() == [5, 8, 11]

def test_mel_cache(tmp_path):
    beat_clip(tmp_path / "a.mp4")
    cfg = get_config("mel-synthscapes")
    m1 = clip_mel(tmp_path / "a.mp4", cfg, seconds=4.0, cache_dir=tmp_path / "c")
    files = list((tmp_path / "c").rglob("*.npy"))
    assert len(files) == 1
    m2 = clip_mel(tmp_path / "a.mp4", cfg, seconds=4.0, cache_dir=tmp_path / "c")
    torch.testing.assert_close(m1, m2)
    clip_mel(tmp_path / "a.mp4", cfg.replace(n_mels=32), seconds=4.0, cache_dir=tmp_path / "c")
    assert len(list((tmp_path / "c").rglob("*.npy"))) == 2          # parameters are part of the key
    (tmp_path / "b.mp4").write_bytes((tmp_path / "a.mp4").read_bytes())
    clip_mel(tmp_path / "b.mp4", cfg, seconds=4.0, cache_dir=tmp_path / "c")
    assert len(list((tmp_path / "c").rglob("*.npy"))) == 2          # same content, same entry
    beat_clip(tmp_path / "a.mp4", beats=(1, 2))
    m3 = clip_mel(tmp_path / "a.mp4", cfg, seconds=4.0, cache_dir=tmp_path / "c")
    assert len(list((tmp_path / "c").rglob("*.npy"))) == 3 and not torch.allclose(m1, m3)

def make_bad_folder(root):
    good = root / "good"; good.mkdir(parents=True)
    beat_clip(good / "ok1.mp4"); beat_clip(good / "ok2.mp4", beats=(3,))
    data = (good / "ok1.mp4").read_bytes()
    (good / "truncated.mp4").write_bytes(data[: len(data) // 2])
    write_video(good / "silent_track_missing.mp4", np.zeros((8, 16, 16, 3), np.uint8), 8)
    (good / "zero_bytes.mp4").write_bytes(b"")
    c = av.open(str(good / "zero_frames.mp4"), "w")      # a video stream that never gets a frame (and some sound)
    v = c.add_stream("libx264", rate=8); v.width = v.height = 16
    a = c.add_stream("aac", rate=SR); a.layout = "mono"
    fr = av.AudioFrame.from_ndarray(np.zeros((1, 4096), np.float32), format="fltp", layout="mono"); fr.sample_rate = SR; fr.pts = 0
    for pkt in [*a.encode(fr), *a.encode(None), *v.encode()]: c.mux(pkt)
    c.close()
    (good / "notes.txt").write_text("not a video")
    (good / "fake.mp4").write_text("this is text, not an mp4")
    (good / "ok1.json").write_text("{}")        # sidecars are not counted

def test_bad_files_skipped_counted_reported(tmp_path):
    make_bad_folder(tmp_path)
    with pytest.warns(SkippedFileWarning, match="6 skipped"):
        ds = AVClipDataset(tmp_path, n_frames=4, size=16, cache_dir=False)
    assert len(ds) == 2
    reasons = {p.split("/")[-1]: r for p, r in ds.skipped}
    assert reasons == {"truncated.mp4": "corrupt", "silent_track_missing.mp4": "no audio track", "zero_bytes.mp4": "empty file",
                       "zero_frames.mp4": "no video frames", "notes.txt": "not a video file", "fake.mp4": "corrupt"}
    assert "2 clips in 1 classes; 6 skipped:" in ds.report() and "1 no audio track" in ds.report()
    # without require_audio the silent video is used, with silent windows
    with pytest.warns(SkippedFileWarning):
        ds2 = AVClipDataset(tmp_path, n_frames=4, size=16, cache_dir=False, require_audio=False)
    s = ds2[[it["path"].endswith("silent_track_missing.mp4") for it in ds2.items].index(True)]
    assert s["audio"].abs().max() == 0 and s["frames"].shape == (4, 3, 16, 16)

def test_file_damaged_after_scan_is_replaced(tmp_path):
    (tmp_path / "c").mkdir()
    beat_clip(tmp_path / "c" / "a.mp4"); beat_clip(tmp_path / "c" / "b.mp4")
    ds = AVClipDataset(tmp_path, n_frames=4, size=16, cache_dir=False)
    (tmp_path / "c" / "a.mp4").write_bytes(b"garbage")
    with pytest.warns(SkippedFileWarning, match="a.mp4"):
        s = ds[0]
    assert s["path"].endswith("b.mp4") and len(ds.failed) == 1 and "1 failed while loading" in ds.report()

def test_no_usable_clips(tmp_path):
    (tmp_path / "x").mkdir(); (tmp_path / "x" / "a.txt").write_text("no")
    with pytest.raises(UserError, match="no usable clips"), warnings.catch_warnings():
        warnings.simplefilter("ignore"); AVClipDataset(tmp_path)
    with pytest.raises(UserError): AVClipDataset(tmp_path / "missing")

def test_dataloader_workers(tmp_path):
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        for i in range(3): beat_clip(tmp_path / c / f"{i}.mp4", beats=(i * 3 + 1,))
    ds = AVClipDataset(tmp_path, n_frames=8, size=16, train=True, cache_dir=tmp_path / "cache", full_mel=True)
    dl = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2, shuffle=True)
    batches = list(dl)
    assert sum(len(b["label"]) for b in batches) == 6
    b = batches[0]
    assert b["frames"].shape == (3, 8, 3, 16, 16) and b["audio"].shape == (3, 8, 1, 64, 16)
    assert b["frames"].min() >= -1 and b["frames"].max() <= 1 and torch.isnan(b["motion"]).all()
    assert b["mel"].shape == (3, 64, 250)                        # mel-synthscapes: 250 frames = 4 s
