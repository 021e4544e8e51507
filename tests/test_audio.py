"""Audio front end: the mel against an independent NumPy/SciPy reference, and every kind of bad input."""

import numpy as np
import pytest
import scipy.signal
import soundfile as sf
import torch

from sound_video_gen.core import UserError, get_config
from sound_video_gen.audio import (MelConfig, SilentAudioWarning, TruncatedAudioWarning, audio_windows,
                                   fixed_length, frame_windows, load_audio, load_mel, log_mel, spec_augment)


# ---------------------------------------------------------------- an independent librosa-default mel
def hz_to_mel(f):
    "Slaney's mel scale (librosa's default, htk=False)."
    f = np.asarray(f, np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, f / f_sp)

def mel_to_hz(m):
    m = np.asarray(m, np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)

def mel_filterbank(sr, n_fft, n_mels, fmin=0.0, fmax=None):
    "Triangular filters between Slaney-mel-spaced edges, area-normalised (librosa norm='slaney')."
    fmax = sr / 2 if fmax is None else fmax
    fft_freqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    w = np.maximum(0, np.minimum(lower, upper))
    return w * (2.0 / (edges[2:] - edges[:-2]))[:, None]

def reference_unit_mel(y, sr, n_fft, hop, n_mels, top_db=80.0):
    "librosa.feature.melspectrogram defaults + power_to_db(ref=max) + /top_db + 1, in float64."
    y = np.pad(np.asarray(y, np.float64), n_fft // 2, mode="constant")
    win = scipy.signal.get_window("hann", n_fft, fftbins=True)
    frames = np.lib.stride_tricks.sliding_window_view(y, n_fft)[::hop]
    S = np.abs(np.fft.rfft(frames * win, axis=1)).T ** 2
    M = mel_filterbank(sr, n_fft, n_mels) @ S
    amin = 1e-10
    db = 10 * np.log10(np.maximum(amin, M)) - 10 * np.log10(max(amin, M.max()))
    db = np.maximum(db, db.max() - top_db)
    return db / top_db + 1


def _signals(sr, seconds):
    rng = np.random.default_rng(0)
    t = np.arange(int(sr * seconds)) / sr
    noise = rng.standard_normal(t.size) * np.linspace(0.05, 0.5, t.size)
    chirp = scipy.signal.chirp(t, 100, t[-1], sr / 3) * 0.3
    bursts = rng.standard_normal(t.size) * (np.sin(2 * np.pi * 3 * t) > 0.6) * 0.4 + 0.01 * rng.standard_normal(t.size)
    return {"noise": noise, "chirp": chirp, "bursts": bursts}


@pytest.mark.parametrize("name", ["mel-paper", "mel-tiny", "mel-synthscapes"])
def test_mel_matches_independent_reference(name):
    cfg = get_config(name)
    for label, y in _signals(cfg.sample_rate, 1.5).items():
        ref = reference_unit_mel(y, cfg.sample_rate, cfg.n_fft, cfg.hop_length, cfg.n_mels, cfg.top_db)
        ours = log_mel(torch.tensor(y, dtype=torch.float32), cfg).double().numpy()
        assert ours.shape == ref.shape, (label, ours.shape, ref.shape)
        err = np.abs(ours - ref).max()
        assert err < 1e-4, f"{name}/{label}: max abs difference {err:.2e}"


def test_mel_batch_equals_items():
    cfg = get_config("mel-tiny")
    x = torch.randn(3, 8000)
    batch = log_mel(x, cfg)
    for i in range(3):
        torch.testing.assert_close(batch[i], log_mel(x[i], cfg))


def test_dB_reference_is_the_whole_clip():
    cfg = get_config("mel-tiny")
    loud = torch.randn(16000)
    quiet_then_loud = torch.cat([0.01 * loud, loud])
    m = log_mel(quiet_then_loud, cfg)
    half = m.shape[-1] // 2
    assert m[:, 5:half - 5].mean() < m[:, half + 5:-5].mean() - 0.4  # 40 dB quieter = 0.5 lower


# ---------------------------------------------------------------- files of every kind
def _tone(sr, seconds=0.5, channels=1):
    t = np.arange(int(sr * seconds)) / sr
    y = np.stack([0.4 * np.sin(2 * np.pi * (300 + 100 * c) * t) for c in range(channels)], 1)
    return y if channels > 1 else y[:, 0]


@pytest.mark.parametrize("sr", [8000, 11025, 16000, 22050, 32000, 44100, 48000, 96000])
def test_any_sample_rate_resamples(tmp_path, sr):
    f = tmp_path / "a.wav"
    sf.write(f, _tone(sr), sr)
    wave, rate = load_audio(f, sr=16000)
    assert rate == 16000
    assert abs(wave.shape[0] - 8000) <= 1
    assert wave.abs().max() == pytest.approx(0.4, abs=0.03)


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "PCM_U8"])
def test_integer_and_float_wav_scale_to_unit_range(tmp_path, subtype):
    f = tmp_path / "a.wav"
    sf.write(f, _tone(16000), 16000, subtype=subtype)
    wave, _ = load_audio(f)
    assert wave.dtype == torch.float32
    assert wave.abs().max() == pytest.approx(0.4, abs=0.01)


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "mp3"])
def test_soundfile_formats(tmp_path, fmt):
    f = tmp_path / f"a.{fmt}"
    sf.write(f, _tone(44100, 1.0), 44100)
    wave, rate = load_audio(f)
    assert rate == 44100
    assert abs(wave.shape[0] - 44100) < 3000  # lossy codecs pad or trim a little
    assert wave.abs().max() == pytest.approx(0.4, abs=0.08)


def _write_container(path, sr=22050, seconds=1.0, with_audio=True, with_video=True, codec="aac"):
    import av
    with av.open(str(path), "w") as c:
        if with_video:
            vs = c.add_stream("libx264" if path.suffix != ".webm" else "libvpx", rate=8)
            vs.width = vs.height = 32
            vs.pix_fmt = "yuv420p"
        if with_audio:
            as_ = c.add_stream(codec, rate=sr)
            as_.layout = "stereo"
        if with_video:
            for i in range(int(8 * seconds)):
                img = np.full((32, 32, 3), i * 20, np.uint8)
                for pkt in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")): c.mux(pkt)
            for pkt in vs.encode(): c.mux(pkt)
        if with_audio:
            y = _tone(sr, seconds, channels=2).T.astype(np.float32)
            fmt = "fltp" if codec != "libopus" else "flt"
            step = 1024
            for i in range(0, y.shape[1], step):
                chunk = y[:, i:i + step]
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk) if fmt == "fltp" else
                                                   np.ascontiguousarray(chunk.T.reshape(1, -1)), format=fmt, layout="stereo")
                frame.sample_rate = sr
                for pkt in as_.encode(frame): c.mux(pkt)
            for pkt in as_.encode(): c.mux(pkt)


@pytest.mark.parametrize("suffix", [".mp4", ".m4a", ".mov"])
def test_audio_track_of_containers(tmp_path, suffix):
    f = tmp_path / f"clip{suffix}"
    _write_container(f, with_video=suffix != ".m4a")
    wave, rate = load_audio(f, sr=16000)
    assert rate == 16000
    assert abs(wave.shape[0] - 16000) < 2500  # AAC priming/padding
    assert wave.abs().max() > 0.2


def test_webm_audio(tmp_path):
    f = tmp_path / "clip.webm"
    _write_container(f, sr=48000, with_video=False, codec="libopus")
    wave, rate = load_audio(f)
    assert rate == 48000 and wave.shape[0] > 40000


def test_video_without_audio(tmp_path):
    f = tmp_path / "silent_film.mp4"
    _write_container(f, with_audio=False)
    with pytest.raises(UserError, match="has no audio track"):
        load_audio(f)


def test_multichannel_mixdown(tmp_path):
    f = tmp_path / "six.wav"
    y = np.zeros((8000, 6)); y[:, 0] = 0.6; y[:, 3] = -0.6; y[:, 5] = 0.3
    sf.write(f, y, 16000, subtype="FLOAT")
    mono, _ = load_audio(f)
    assert torch.allclose(mono, torch.full((8000,), 0.05), atol=1e-6)
    multi, _ = load_audio(f, mono=False)
    assert multi.shape == (6, 8000)


def test_offset_and_duration(tmp_path):
    f = tmp_path / "ramp.wav"
    sf.write(f, np.linspace(-1, 1, 16000), 16000, subtype="FLOAT")
    part, _ = load_audio(f, offset=0.5, duration=0.25)
    assert part.shape == (4000,)
    assert part[0] == pytest.approx(0.0, abs=1e-3)


# ---------------------------------------------------------------- bad input: one sentence each
def _msg(excinfo):
    m = str(excinfo.value)
    assert "\n" not in m and m.endswith(".") and "Traceback" not in m
    return m

def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="does not exist") as e: load_audio(tmp_path / "nope.wav")
    _msg(e)

def test_directory(tmp_path):
    with pytest.raises(UserError, match="is a folder") as e: load_audio(tmp_path)
    _msg(e)

def test_empty_file(tmp_path):
    f = tmp_path / "empty.wav"; f.write_bytes(b"")
    with pytest.raises(UserError, match="is empty") as e: load_audio(f)
    _msg(e)

def test_text_renamed_wav(tmp_path):
    f = tmp_path / "notes.wav"; f.write_text("just some words\n" * 50)
    with pytest.raises(UserError, match="not a readable audio") as e: load_audio(f)
    _msg(e)

def test_random_bytes(tmp_path):
    f = tmp_path / "noise.flac"; f.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(UserError, match="not a readable audio|corrupt") as e: load_audio(f)
    _msg(e)

def test_header_only_truncation(tmp_path):
    f = tmp_path / "cut.wav"; sf.write(tmp_path / "full.wav", _tone(16000), 16000)
    f.write_bytes((tmp_path / "full.wav").read_bytes()[:30])
    with pytest.raises(UserError) as e: load_audio(f)
    _msg(e)

@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3"])
def test_truncated_file_loads_what_is_there_and_warns(tmp_path, fmt):
    full = tmp_path / f"full.{fmt}"
    sf.write(full, _tone(16000, 1.0), 16000)
    cut = tmp_path / f"cut.{fmt}"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.warns(TruncatedAudioWarning, match="truncated"):
        wave, _ = load_audio(cut)
    assert 0 < wave.shape[0] < 16000

def test_badly_truncated_ogg_is_an_error(tmp_path):
    full = tmp_path / "full.ogg"
    sf.write(full, _tone(16000, 1.0), 16000)
    cut = tmp_path / "cut.ogg"; cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(UserError, match="corrupt, truncated, or not really OGG audio") as e: load_audio(cut)
    _msg(e)

def test_zero_length_audio(tmp_path):
    f = tmp_path / "zero.wav"; sf.write(f, np.zeros(0), 16000)
    with pytest.raises(UserError, match="contains no audio samples") as e: load_audio(f)
    _msg(e)

@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_inf_samples(tmp_path, bad):
    y = _tone(16000); y[100] = bad
    f = tmp_path / "bad.wav"; sf.write(f, y, 16000, subtype="FLOAT")
    with pytest.raises(UserError, match="NaN or infinite") as e: load_audio(f)
    _msg(e)

def test_silent_audio_warns_and_maps_to_floor(tmp_path):
    f = tmp_path / "silence.wav"; sf.write(f, np.zeros(16000), 16000)
    with pytest.warns(SilentAudioWarning, match="silent"):
        mel = load_mel(f, get_config("mel-tiny"))
    assert mel.abs().max() == 0

def test_shorter_than_one_window_is_padded_with_floor(tmp_path):
    cfg = get_config("mel-tiny")
    f = tmp_path / "blip.wav"; sf.write(f, _tone(16000, 0.01), 16000)  # 160 samples < one FFT
    wave, _ = load_audio(f, sr=cfg.sample_rate)
    win = audio_windows(wave, fps=8, cfg=cfg, n_frames=4)
    assert win.shape == (4, 1, cfg.n_mels, cfg.window_frames)
    assert win[0].max() == 1.0                      # the blip is in frame 0's window
    assert win[1:].abs().max() == 0                 # the rest is floor
    padded = fixed_length(log_mel(wave, cfg), cfg.clip_frames)
    assert padded.shape[-1] == cfg.clip_frames

@pytest.mark.parametrize("kwargs,match", [({"sr": 10}, "sample rate"), ({"offset": -1}, "offset"),
                                          ({"duration": 0}, "duration")])
def test_absurd_parameters(tmp_path, kwargs, match):
    f = tmp_path / "a.wav"; sf.write(f, _tone(16000), 16000)
    with pytest.raises(UserError, match=match): load_audio(f, **kwargs)

def test_offset_past_the_end(tmp_path):
    f = tmp_path / "a.wav"; sf.write(f, _tone(16000), 16000)
    with pytest.raises(UserError, match="no audio samples after the requested offset"):
        load_audio(f, offset=5.0)


# ---------------------------------------------------------------- windows and augmentation
@pytest.mark.parametrize("fps,T", [(4, 3), (16, 40), (25, 7), (30, 1)])
def test_frame_windows_are_centred_slices(fps, T):
    cfg = get_config("mel-tiny")
    mel = torch.rand(cfg.n_mels, 400)
    win = frame_windows(mel, T, fps, cfg)
    assert win.shape == (T, 1, cfg.n_mels, cfg.window_frames)
    for t in range(T):
        c = round((t + 0.5) / fps * cfg.sample_rate / cfg.hop_length)
        lo = c - cfg.window_frames // 2
        expect = torch.zeros(cfg.n_mels, cfg.window_frames)
        a, b = max(lo, 0), min(lo + cfg.window_frames, 400)
        if b > a: expect[:, a - lo:b - lo] = mel[:, a:b]
        torch.testing.assert_close(win[t, 0], expect)

def test_frame_windows_batched():
    cfg = get_config("mel-tiny")
    mel = torch.rand(2, cfg.n_mels, 100)
    win = frame_windows(mel, 5, 10, cfg)
    assert win.shape == (2, 5, 1, cfg.n_mels, cfg.window_frames)
    torch.testing.assert_close(win[1], frame_windows(mel[1], 5, 10, cfg))

def test_spec_augment_is_seeded_and_only_zeroes():
    m = torch.rand(4, 32, 64) + 0.5
    a = spec_augment(m, generator=torch.Generator().manual_seed(3))
    b = spec_augment(m, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)
    assert ((a == 0) | (a == m)).all()
    assert (a == 0).any()

def test_mel_config_validation():
    with pytest.raises(UserError, match="f_max"): MelConfig(f_max=30000)
    with pytest.raises(UserError, match="unknown MelConfig key"): MelConfig.from_dict({"nmels": 3})


# ---------------------------------------------------------------- streaming resampler
@pytest.mark.parametrize("orig,new", [(44100, 16000), (8000, 16000), (48000, 22050), (16000, 16000), (11025, 16000)])
@pytest.mark.parametrize("block", [1, 997, 4096, 100_000])
def test_resample_blocks_equals_one_pass_resample(orig, new, block):
    "Blocks of any size, joined, equal torchaudio's one-pass resample of the whole signal (same length too)."
    import torchaudio
    from sound_video_gen.audio import resample_blocks
    x = torch.from_numpy(np.random.default_rng(orig + block).standard_normal(orig // 3 + 17).astype(np.float32))
    want = torchaudio.functional.resample(x, orig, new)
    got = torch.cat(list(resample_blocks((x[i:i + block] for i in range(0, len(x), block)), orig, new)))
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, atol=2e-6, rtol=0)
