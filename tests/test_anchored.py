"The anchored block's horizon: fresh GRU rollouts every `horizon` frames, cross-faded, exact when streamed."
import pytest
import torch

from sound_video_gen.core import UserError, get_config
from sound_video_gen.model.anchored import AnchoredBlock, AnchoredConfig, rollout_spans, rollout_weights
from sound_video_gen.model.generation import GenerateOptions


def _block(horizon, crossfade, seed=0):
    torch.manual_seed(seed)
    cfg = AnchoredConfig(num_ws=6, w_dim=4, hidden=8, noise_std=0.05, bound=0.5, out_init_gain=1.0,
                         horizon=horizon, crossfade=crossfade)
    return AnchoredBlock(cfg)


def _inputs(blk, B=2, T=23, seed=1):
    g = torch.Generator().manual_seed(seed)
    n, d = blk.cfg.num_ws, blk.cfg.w_dim
    base = torch.randn(B, n, d, generator=g)
    anc, now = torch.randn(B, T, n, d, generator=g), torch.randn(B, T, n, d, generator=g)
    loud, noise = torch.rand(B, T, 2, generator=g), blk.draw_noise(B, T, torch.Generator().manual_seed(seed + 1))
    return base, anc, now, loud, noise


@pytest.mark.parametrize("horizon,crossfade", [(4, 2), (4, 4), (5, 0), (16, 8), (3, 1)])
def test_weights_hand_over_from_one_rollout_to_the_next(horizon, crossfade):
    T = 70
    spans = rollout_spans(0, T, horizon, crossfade)
    W = torch.stack([rollout_weights(s, 0, T, horizon, crossfade) for s, _ in spans])
    torch.testing.assert_close(W.sum(0), torch.ones(T), atol=1e-6, rtol=0)     # every frame's weights add up to one
    assert int((W > 0).sum(0).max()) <= 2                                       # at most two rollouts at a time
    assert torch.equal(W[0, :horizon], torch.ones(horizon)) and torch.equal(W[1:, :horizon], torch.zeros(len(W) - 1, horizon))
    for (s, e), w in zip(spans, W):
        live = w.nonzero().flatten()
        assert live.min() >= s and live.max() < e and e - s == horizon + crossfade   # nobody older than horizon + crossfade
    for t0, n in ((0, 1), (5, 9), (17, 30), (40, 3)):   # the spans a chunk meets are those with weight in it
        meets = {s for s, e in rollout_spans(t0, n, horizon, crossfade)}
        assert meets == {s for (s, _), w in zip(spans, W) if w[t0:t0 + n].sum() > 0}


@pytest.mark.parametrize("horizon,crossfade", [(4, 2), (4, 4), (5, 0), (3, 1)])
def test_each_frame_blends_fresh_rollouts_of_the_single_rollout_block(horizon, crossfade):
    "r_t is the weighted sum of the residuals of one-rollout blocks started afresh at k·horizon on the same inputs."
    blk = _block(horizon, crossfade)
    base, anc, now, loud, noise = _inputs(blk)
    T, beta = anc.shape[1], 0.7
    got = blk.rollout(base, anc, now, loud, beta=beta, noise=noise)
    want = base[:, None] + anc.clone()
    for s, e in rollout_spans(0, T, horizon, crossfade):
        e = min(e, T)
        sl = slice(s, e)
        one = blk.rollout(base, anc[:, sl], now[:, sl], loud[:, sl], beta=1.0, noise=noise[:, sl], horizon=0)
        r = one - base[:, None] - anc[:, sl]
        want[:, sl] += beta * rollout_weights(s, s, e - s, horizon, crossfade)[None, :, None, None] * r
    torch.testing.assert_close(got, want, atol=2e-6, rtol=0)
    assert (got - blk.rollout(base, anc, now, loud, beta=beta, noise=noise, horizon=0)).abs().max() > 1e-3


@pytest.mark.parametrize("horizon,crossfade", [(4, 2), (16, 8), (5, 0)])
def test_a_video_within_the_horizon_is_the_single_rollout_video(horizon, crossfade):
    blk = _block(horizon, crossfade)
    base, anc, now, loud, noise = _inputs(blk, T=horizon + 3)
    a = blk.rollout(base, anc, now, loud, noise=noise)
    b = blk.rollout(base, anc, now, loud, noise=noise, horizon=0)
    assert torch.equal(a[:, :horizon], b[:, :horizon])
    assert not torch.equal(a[:, horizon], b[:, horizon]) or crossfade == 0 and horizon + 1 > a.shape[1]


@pytest.mark.parametrize("horizon,crossfade", [(4, 2), (4, 4), (5, 0), (0, 0)])
@pytest.mark.parametrize("cuts", [[1], [3, 4, 5], [7, 16], list(range(1, 23))])
def test_chunked_rollout_equals_one_pass_bit_for_bit(horizon, crossfade, cuts):
    blk = _block(horizon, crossfade)
    base, anc, now, loud, noise = _inputs(blk)
    whole = blk.rollout(base, anc, now, loud, noise=noise)
    st, outs, prev = None, [], 0
    for c in cuts + [anc.shape[1]]:
        o, st = blk.rollout(base, anc[:, prev:c], now[:, prev:c], loud[:, prev:c], noise=noise[:, prev:c], state=st,
                            return_state=True)
        outs.append(o)
        prev = c
    assert torch.equal(torch.cat(outs, 1), whole)
    if horizon: assert len([k for k in st["coarse"]]) <= 2          # only the live rollouts' states are carried


def test_gradients_reach_every_rollout():
    blk = _block(4, 2)
    base, anc, now, loud, noise = _inputs(blk, T=12)
    blk.rollout(base, anc, now, loud, noise=noise).square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in blk.parameters())


def test_bad_horizons_are_one_sentence_errors():
    for kw, msg in (({"horizon": 4, "crossfade": 5}, "must not exceed"), ({"horizon": -1}, "horizon=-1"), ({"horizon": 2.5}, "whole number")):
        with pytest.raises(UserError, match=msg): AnchoredConfig(**kw)
    with pytest.raises(UserError, match="whole number"): GenerateOptions(horizon=-3)
    with pytest.raises(UserError, match="whole number"): GenerateOptions(crossfade=True)
    blk = _block(4, 2)
    base, anc, now, loud, noise = _inputs(blk, T=6)
    with pytest.raises(UserError, match="must not exceed"): blk.rollout(base, anc, now, loud, horizon=2, crossfade=3)
    _, st = blk.rollout(base, anc[:, :3], now[:, :3], loud[:, :3], return_state=True)
    with pytest.raises(UserError, match="begun with"): blk.rollout(base, anc[:, 3:], now[:, 3:], loud[:, 3:], state=st, horizon=8)


def test_the_paper_path_refuses_a_horizon():
    from sound_video_gen.model.ssvg import SSVG
    from sound_video_gen.generators.factory import create_generator
    G = create_generator("stylegan2-tiny", seed=0).eval()
    model = SSVG(get_config("ssvg-tiny").for_generator(G)).eval()
    assert model.cfg.path == "paper"
    win = torch.rand(1, 5, 1, model.cfg.encoder.input_size, 16)
    with pytest.raises(UserError, match="anchored path"): model.latents(win, model.initial(G, 1), horizon=4)
    model.latents(win, model.initial(G, 1))            # the defaults leave the paper path alone


def test_the_horizon_keeps_the_demo_models_motion_going_past_its_training_window():
    """The shipped demo model was trained on 16-frame windows. Over a 4-s example sound, one rollout's residual slows
    after frame 16; with the default horizon (fresh rollouts every 16 frames) it keeps moving, and the first 16 frames
    are the same."""
    from sound_video_gen.apps.pipeline import SoundToVideo
    from sound_video_gen.model.bundle import pretrained_dir
    s2v = SoundToVideo.from_pretrained("demo")
    assert (s2v.model.cfg.anchored.horizon, s2v.model.cfg.anchored.crossfade) == (16, 8)
    ratios = {}
    for name in ("birdsong", "ocean_waves", "thunderstorm"):
        plan = s2v.plan(pretrained_dir() / "examples" / f"{name}.wav", seconds=4)
        speed, first = {}, {}
        for h in (0, 16):
            o = GenerateOptions(horizon=h)
            w = torch.cat(list(s2v.iter_latents(plan, o)))
            r = w - torch.cat(list(s2v.iter_latents(plan, o.replace(beta=0.0))))   # the residual: the path minus its anchor
            speed[h] = (r[16:] - r[15:-1]).pow(2).mean().sqrt().item()
            first[h] = w[:16]
        assert torch.equal(first[0], first[16])
        ratios[name] = speed[16] / speed[0]
    assert min(ratios.values()) > 1.0 and sum(ratios.values()) / len(ratios) > 1.2, ratios   # measured: 1.49, 1.74, 1.09


def test_generate_refuses_a_crossfade_longer_than_the_horizon_and_writes_nothing(tmp_path, capsys):
    from sound_video_gen.cli import dispatch
    from sound_video_gen.core import run_cli
    from sound_video_gen.model.bundle import pretrained_dir
    with pytest.raises(UserError, match="must not exceed"): GenerateOptions(horizon=3, crossfade=5)
    sound, out = pretrained_dir() / "examples" / "birdsong.wav", tmp_path / "v.mp4"
    for extra in (["--horizon", "3", "--crossfade", "5"], ["--crossfade", "20"]):   # the second against the model's 16
        assert run_cli(dispatch, ["generate", str(sound), "-o", str(out), "--quiet", "--seconds", "2", *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: crossfade (") and "\n" not in err, err
        assert list(tmp_path.iterdir()) == []
    assert run_cli(dispatch, ["generate", str(sound), "-o", str(out), "--quiet", "--seconds", "2", "--horizon", "0"]) == 0
    assert out.stat().st_size > 0
