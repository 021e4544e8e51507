"Landscape tooling (link CSV, yt-dlp errors, cutting, indexing), Sub-URMP loader, Table 1 statistics; all offline."
import stat, sys
import numpy as np
import pytest

from sound_video_gen.core import UserError
from sound_video_gen.data.clips import AVClipDataset, read_av, read_metadata, write_video
from sound_video_gen.data import landscape as L

FPS, SR = 10, 22050

def long_video(path, seconds=25, fps=FPS, sr=SR, size=(40, 48), every=13):
    "A video whose frame k flashes and whose sound clicks at that frame's centre, every `every` frames from frame 3."
    n = int(seconds * fps)
    fr = np.full((n, *size, 3), 30, np.uint8)
    au = np.random.default_rng(0).normal(0, 1e-3, int(seconds * sr)).astype(np.float32)
    beats = np.arange(3, n, every)
    for k in beats:
        fr[k] = 230; c = int((k + 0.5) / fps * sr); au[c - 100:c + 100] += 0.5
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(path, fr, fps, au, sr)
    return beats

def test_read_links_csv_variants(tmp_path):
    f = tmp_path / "a.csv"
    f.write_text("Class,YouTube Link,start\nThunder Storm,https://www.youtube.com/watch?v=abcdefghijk,12\nrain,https://youtu.be/ABCDEFGHIJK,\n,,\n")
    rows = L.read_links_csv(f)
    assert [(r["class"], r["id"]) for r in rows] == [("thunder_storm", "abcdefghijk"), ("rain", "ABCDEFGHIJK")]
    assert rows[0]["start"] == 12.0 and "start" not in rows[1]
    f.write_text("abcdefghijk,waterfall\nhttps://www.youtube.com/watch?v=zzzzzzzzzzz,wind\n")    # no header, bare id
    rows = L.read_links_csv(f)
    assert rows[0]["url"] == "https://www.youtube.com/watch?v=abcdefghijk" and [r["class"] for r in rows] == ["waterfall", "wind"]
    f.write_text("name,label\nfoo,bar\n")
    with pytest.raises(UserError, match="no column of video links"): L.read_links_csv(f)
    with pytest.raises(UserError, match="does not exist"): L.read_links_csv(tmp_path / "missing.csv")

def test_download_without_yt_dlp(tmp_path, monkeypatch):
    monkeypatch.setattr(L, "yt_dlp_command", lambda: None)
    with pytest.raises(UserError, match="pip install yt-dlp"):
        L.download_videos([dict(url="https://youtu.be/abcdefghijk", **{"class": "rain"}, id="abcdefghijk")], tmp_path)

def fake_yt_dlp(tmp_path, body):
    exe = tmp_path / "bin" / "yt-dlp"; exe.parent.mkdir()
    exe.write_text(f"#!{sys.executable}\nimport sys\n{body}\n"); exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return [str(exe)]

def test_download_offline_is_one_sentence(tmp_path, monkeypatch):
    cmd = fake_yt_dlp(tmp_path, "print('ERROR: [youtube] x: Unable to download webpage: <urlopen error [Errno -3] "
                                "Temporary failure in name resolution>', file=sys.stderr); sys.exit(1)")
    monkeypatch.setattr(L, "yt_dlp_command", lambda: cmd)
    rows = [dict(url=f"https://youtu.be/{i}bcdefghijk", **{"class": "rain"}, id=f"{i}bcdefghijk") for i in range(2)]
    with pytest.raises(UserError, match="offline"): L.download_videos(rows, tmp_path / "raw", progress=False)

def test_download_partial_failure_and_skip(tmp_path, monkeypatch):
    # a fake yt-dlp that "downloads" by copying a local video, and fails for one id
    src = tmp_path / "src.mp4"; long_video(src, seconds=2)
    cmd = fake_yt_dlp(tmp_path, f"import shutil\nout = sys.argv[sys.argv.index('-o') + 1]\n"
                                f"if '--download-sections' in sys.argv: open({str(tmp_path / 'args.txt')!r}, 'w').write(sys.argv[sys.argv.index('--download-sections') + 1])\n"
                                f"if 'removed' in sys.argv[-1]:\n"
                                f"    print('ERROR: Video unavailable', file=sys.stderr); sys.exit(1)\nshutil.copy({str(src)!r}, out.replace('%(ext)s', 'mp4'))")
    monkeypatch.setattr(L, "yt_dlp_command", lambda: cmd)
    rows = [dict(url="https://youtu.be/okokokokoko", **{"class": "rain"}, id="okokokokoko", start=5.0),
            dict(url="https://youtu.be/removedxxxx", **{"class": "rain"}, id="removedxxxx")]
    with pytest.warns(UserWarning, match="1 of 2 downloads failed"):
        r = L.download_videos(rows, tmp_path / "raw", progress=False)
    assert len(r["ok"]) == 1 and r["failed"][0][1] == "ERROR: Video unavailable"
    assert (tmp_path / "args.txt").read_text().split("\n")[:1] == ["*5.0-inf"]     # the row's section only
    with pytest.warns(UserWarning):
        r = L.download_videos(rows, tmp_path / "raw", progress=False)
    assert r["skipped"] == 1                                   # already there: not downloaded again

def test_cut_clips_keeps_sync(tmp_path):
    beats = long_video(tmp_path / "raw" / "thunder" / "storm.mp4")
    clips = L.cut_clips(tmp_path / "raw" / "thunder" / "storm.mp4", tmp_path / "cut")
    assert [c["start"] for c in clips] == [0.0, 10.0]          # 25 s -> two full 10-s clips, the tail is dropped
    for k, c in enumerate(clips):
        f, a, fps, sr = read_av(c["path"])
        assert f.shape == (100, 40, 48, 3) and a.shape[0] == 10 * SR and (fps, sr) == (FPS, SR)
        want = beats[(beats >= 100 * k) & (beats < 100 * (k + 1))] - 100 * k
        assert np.nonzero(f.mean((1, 2, 3)) > 128)[0].tolist() == want.tolist()
        loud = np.unique(np.nonzero(np.abs(a.numpy()) > 0.3)[0] // (SR // FPS))
        assert loud.tolist() == want.tolist()                   # the sound's clicks sit on the same frames
    with pytest.raises(UserError, match="already exists"): L.cut_clips(tmp_path / "raw" / "thunder" / "storm.mp4", tmp_path / "cut")
    # resampled: 5 fps, shorter side 16, 16 kHz, from 3 s on, at most one clip
    c = L.cut_clips(tmp_path / "raw" / "thunder" / "storm.mp4", tmp_path / "cut5", fps=5, size=16, sr=16000, start=3.0, max_clips=1)
    f, a, fps, sr = read_av(c[0]["path"])
    assert len(c) == 1 and f.shape == (50, 16, 20, 3) and a.shape[0] == 160000 and (fps, sr) == (5, 16000)
    assert not list((tmp_path / "cut5").glob(".*"))              # no temporary files left

def test_cut_needs_sound(tmp_path):
    write_video(tmp_path / "mute.mp4", np.zeros((20, 16, 16, 3), np.uint8), 10)
    with pytest.raises(UserError, match="no audio track"): L.cut_clips(tmp_path / "mute.mp4", tmp_path / "out")

def test_build_landscape_and_table(tmp_path):
    long_video(tmp_path / "raw" / "thunder" / "a.mp4", seconds=21)
    long_video(tmp_path / "raw" / "waterfall_burbling" / "b.mp4", seconds=12, size=(36, 64))
    (tmp_path / "raw" / "waterfall_burbling" / "broken.mp4").write_bytes(b"\x00" * 100)
    with pytest.warns(UserWarning, match="1 skipped"):
        r = L.build_landscape(tmp_path / "raw", tmp_path / "land", fps=8, sr=16000, progress=False)
    assert r["clips"] == 3 and r["videos"] == 2
    rows = read_metadata(tmp_path / "land" / "metadata.csv")
    assert sorted(r["id"] for r in rows) == ["a_0", "a_1", "b_0"]
    assert len({r["split"] for r in rows if r["id"].startswith("a_")}) == 1     # clips of one video share a split
    ds = AVClipDataset(tmp_path / "land", n_frames=8, size=32, cache_dir=False)
    s = ds[0]
    assert len(ds) == 3 and s["frames"].shape == (8, 3, 32, 32) and s["caption"] in ("thunder", "waterfall burbling")
    st = L.dataset_stats(tmp_path / "land", "Landscape-local")
    assert st == dict(dataset="Landscape-local", videos=3, resolution="48 x 40", classes=2, audio_video_pairs="✓",
                      hours=round(30 / 3600, 3), skipped=0)
    md = L.table1(L.PAPER_TABLE1 + [st])
    assert "| Landscape | 9,280 | 1280 x 720 | 9 | ✓ | 25.8 |" in md and "| Landscape-local | 3 | 48 x 40 | 2 | ✓ |" in md

def make_suburmp(root, with_chunks=True):
    from PIL import Image
    sr = 16000
    for inst, pieces in (("cello", ("cello01", "cello02")), ("tuba", ("tuba03",))):
        for piece in pieces:
            for k in range(6):
                (root / "img" / "train" / inst).mkdir(parents=True, exist_ok=True)
                v = 200 if k % 3 == 0 else 30                          # frames 0 and 3 bright ...
                Image.fromarray(np.full((24, 40, 3), v, np.uint8)).save(root / "img" / "train" / inst / f"{piece}_{k}.jpg")
                if with_chunks:
                    import soundfile as sf
                    (root / "chunk" / "train" / inst).mkdir(parents=True, exist_ok=True)
                    a = np.random.default_rng(k).normal(0, 0.3 if k % 3 == 0 else 0.003, sr // 2)   # ... and loud
                    sf.write(root / "chunk" / "train" / inst / f"{piece}_{k}.wav", a, sr)

def test_suburmp(tmp_path):
    make_suburmp(tmp_path)
    ds = L.SubURMPDataset(tmp_path, n_frames=4, size=16)
    assert len(ds) == 3 and ds.classes == ["cello", "tuba"] and ds.missing_audio == 0
    s = ds[0]
    assert s["id"] == "cello01" and s["frames"].shape == (4, 3, 16, 16) and s["audio"].shape == (4, 1, 64, 16)
    bright = (s["frames"].mean((1, 2, 3)) > 0).tolist()
    loud = s["audio"][:, 0, :, 8].mean(1)
    assert bright == [True, False, False, True] and (loud[[0, 3]].min() > loud[[1, 2]].max())
    st = L.dataset_stats(tmp_path, "Sub-URMP-local")
    assert (st["videos"], st["resolution"], st["classes"], st["audio_video_pairs"]) == (3, "40 x 24", 2, "✓")
    assert st["hours"] == round(18 * 0.5 / 3600, 3)
    with pytest.raises(UserError): L.SubURMPDataset(tmp_path, split="test")

def test_data_cli(tmp_path, capsys):
    from sound_video_gen.cli import dispatch
    from sound_video_gen.core import run_cli
    make_suburmp(tmp_path / "urmp", with_chunks=False)
    assert run_cli(dispatch, ["data", "table", str(tmp_path / "urmp"), "--paper"]) == 0
    out = capsys.readouterr().out
    assert "| urmp | 3 | 40 x 24 | 2 | ✗ |" in out and "| Kinetics-400 |" in out
    assert run_cli(dispatch, ["data", "table", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert run_cli(dispatch, ["data"]) == 2

def test_read_frames_after_seek_matches_full_decode(tmp_path):
    "Late times make read_frames seek to a keyframe first; the frames must equal those of a full decode."
    from sound_video_gen.data.clips import read_frames
    long_video(tmp_path / "v.mp4", seconds=15, every=7)
    full = read_frames(tmp_path / "v.mp4")
    times = [12.05, 12.15, 12.95, 3.35, 14.99]
    got = read_frames(tmp_path / "v.mp4", times=times)
    idx = [int(t * FPS) for t in times]
    np.testing.assert_array_equal(got, full[idx])

def test_loader_items_center_and_split(tmp_path):
    "Clips given as items; a centred fixed start; hash splits of a plain folder partition it."
    long_video(tmp_path / "c" / "x.mp4", seconds=6)
    ds = AVClipDataset(items=[dict(path=str(tmp_path / "c" / "x.mp4"), **{"class": "storm"})], n_frames=20, size=16,
                       start="center", cache_dir=False)
    s = ds[0]
    assert s["class"] == "storm" and s["start"] == 2.0 and s["frames"].shape == (20, 3, 16, 16)   # (6 s - 2 s) / 2
    for i in range(12): long_video(tmp_path / "many" / "a" / f"{i}.mp4", seconds=1)
    from collections import Counter
    from sound_video_gen.data.clips import _hash_split
    want = Counter(_hash_split(f"a/{i}.mp4", (0.8, 0.1, 0.1)) for i in range(12))
    assert want["train"] >= 6
    for sp, n in want.items():
        assert len(AVClipDataset(tmp_path / "many", split=sp, n_frames=2, size=16, cache_dir=False)) == n

def test_landscape_cut_cli(tmp_path, capsys):
    from sound_video_gen.cli import dispatch
    from sound_video_gen.core import run_cli
    long_video(tmp_path / "raw" / "wind_noise" / "w.mp4", seconds=5)
    args = ["data", "landscape-cut", str(tmp_path / "raw"), "--out", str(tmp_path / "clips"), "--clip-seconds", "2", "--fps", "5", "--size", "16"]
    assert run_cli(dispatch, args) == 0
    assert "wrote 2 clips from 1 videos" in capsys.readouterr().out
    assert [r["id"] for r in read_metadata(tmp_path / "clips" / "metadata.csv")] == ["w_0", "w_1"]
    assert run_cli(dispatch, args) == 2 and "already holds a dataset" in capsys.readouterr().err
    assert run_cli(dispatch, args + ["--fps", "0"]) == 2
