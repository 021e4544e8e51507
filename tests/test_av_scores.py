"Audio-visual scores: one-to-one AV-Align matching vs an optimal assignment, onsets, motion, correlation, CLIP-space similarity."
import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from sound_video_gen.core import UserError
from sound_video_gen.metrics.av_scores import (audio_envelope, audio_frame_similarity, audio_onsets, av_align, av_align_score,
                                       envelope_motion_correlation, frame_motion, match_peaks, motion_peaks, pearson,
                                       text_frame_similarity)


def optimal_matches(a, v, tol):
    "Maximum bipartite matching by assignment (independent of the greedy sweep)."
    if len(a) == 0 or len(v) == 0: return 0
    ok = np.abs(np.asarray(a)[:, None] - np.asarray(v)[None]) < tol
    r, c = linear_sum_assignment(-ok.astype(float))
    return int(ok[r, c].sum())


@pytest.mark.parametrize("seed", range(20))
def test_one_to_one_matching_is_maximum_and_iou_bounded(seed):
    rng = np.random.default_rng(seed)
    a = np.sort(rng.uniform(0, 2, rng.integers(0, 12)))
    v = np.sort(rng.uniform(0, 2, rng.integers(0, 12)))
    tol = 1 / 8
    assert match_peaks(a, v, tol) == optimal_matches(a, v, tol)
    assert 0 <= av_align(a, v, 8) <= 1
    assert match_peaks(a, v, tol, one_to_one=False) >= match_peaks(a, v, tol)


def test_published_rule_can_exceed_one():
    a, v = np.array([1.0, 1.03, 1.06]), np.array([1.03])
    assert av_align(a, v, 10, one_to_one=False) > 1
    assert av_align(a, v, 10) == pytest.approx(1 / 3)
    assert av_align([1.0], [], 10) == 0 and av_align([], [], 10) == 1


def test_onsets_of_clicks():
    sr = 16000
    rng = np.random.default_rng(0)
    w = rng.normal(size=3 * sr) * 1e-3
    times = [0.25, 0.8, 1.1, 2.0, 2.6]
    for t in times:
        i = int(t * sr); w[i:i + 400] += rng.normal(size=400) * np.exp(-np.arange(400) / 80)
    on = audio_onsets(w, sr)
    assert len(on) == len(times) and np.allclose(on, times, atol=0.03)
    with pytest.raises(UserError, match="too short"): audio_onsets(np.zeros(10), sr)


def test_frame_motion_and_peaks():
    T = 12
    x = -torch.ones(T, 3, 4, 4)
    x[5] = 1.0  # a flash: frames 5 and 6 differ from their predecessors
    m = frame_motion(x)
    assert m.shape == (T,) and m[5] == pytest.approx(1.0) and m[6] == pytest.approx(1.0) and m[3] == 0
    assert frame_motion(torch.full((3, 3, 2, 2), 255, dtype=torch.uint8)).max() == 0
    p = motion_peaks(np.array([0, 1, 0, 0.05, 0, 2, 0.0]), fps=10)
    assert np.allclose(p, [0.1, 0.5])  # 0.05 is below 10% of the max
    assert np.allclose(motion_peaks(m, fps=10), [0.5])  # the flash's flat top counts once
    with pytest.raises(UserError, match="T >= 2"): frame_motion(torch.zeros(1, 3, 2, 2))


def test_av_align_score_on_synced_clip():
    sr, fps, T = 16000, 16, 48
    rng = np.random.default_rng(1)
    w = rng.normal(size=T * sr // fps) * 1e-3
    x = -torch.ones(T, 3, 8, 8)
    for f in (8, 20, 33):
        i = int(f / fps * sr); w[i:i + 300] += rng.normal(size=300) * np.exp(-np.arange(300) / 60)
        x[f] = 1.0
    r = av_align_score(w, sr, x, fps)
    assert r["audio_peaks"] == 3 and r["av_align"] >= 0.5
    still = av_align_score(w, sr, torch.zeros(T, 3, 8, 8), fps)
    assert still["video_peaks"] == 0 and still["av_align"] == 0


def test_envelope_and_correlation():
    sr, fps = 8000, 10
    w = np.concatenate([np.ones(800) * 0.5, np.zeros(800), np.ones(800)])
    env = audio_envelope(w, sr, fps)
    assert np.allclose(env, [0.5, 0, 1])
    assert np.isnan(pearson([1, 1, 1], [1, 2, 3]))
    rng = np.random.default_rng(2); e = rng.random(30)
    assert envelope_motion_correlation(e, -e)["corr"] == pytest.approx(-1)
    with pytest.raises(UserError, match="lengths"): pearson([1, 2], [1, 2, 3])


def test_clip_similarities_with_toy_encoders():
    g = torch.Generator().manual_seed(0)
    proj = torch.randn(3, 8, generator=g)
    enc_img = lambda x: x.mean((2, 3)) @ proj
    enc_aud = lambda w: w.mean((1, 3))[:, :3] @ proj  # first three mel bands "are" the colour
    colours = torch.rand(6, 3, generator=g) * 2 - 1
    frames = colours.view(6, 3, 1, 1).expand(6, 3, 5, 5)
    windows = colours.view(6, 1, 3, 1).expand(6, 1, 3, 4)
    own = audio_frame_similarity(frames, windows, enc_img, enc_aud)
    assert own == pytest.approx(1.0, abs=1e-5)
    assert audio_frame_similarity(frames, windows.roll(1, 0), enc_img, enc_aud) < own
    per = audio_frame_similarity(frames, windows[:1], enc_img, enc_aud, per_frame=True)  # one window for the clip
    assert per.shape == (6,) and per[0] == pytest.approx(1.0, abs=1e-5)
    t = text_frame_similarity(frames, "x", enc_img, lambda texts: colours[:1] @ proj, per_frame=True)
    assert t[0] == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(UserError, match="windows for"): audio_frame_similarity(frames, windows[:2], enc_img, enc_aud)


def test_clip_scores_with_the_package_clip_and_audio_encoder():
    from sound_video_gen.multimodal import audio_encoder as ae, clip as clip_mod
    from sound_video_gen.core import get_config
    from sound_video_gen.metrics.av_scores import clip_scores
    torch.manual_seed(0)
    clip = clip_mod.load_clip("clip-tiny").freeze()
    enc = ae.AudioEncoder(get_config("audio-encoder-tiny", n_mels=16, embed_dim=clip.embed_dim)).eval()
    frames = torch.rand(3, 3, 32, 32) * 2 - 1
    windows = torch.rand(3, 1, 16, 8)
    r = clip_scores(frames, windows, clip, enc, text="rain", audio_encoder_name="F_a tiny (random init)")
    assert -1 <= r["audio_frame"] <= 1 and -1 <= r["text_frame"] <= 1
    assert r["clip"].startswith("clip-tiny") and r["audio_encoder"] == "F_a tiny (random init)"
