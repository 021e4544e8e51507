"""Stage 3 (the sound-guided video model): end-to-end tiny training, gradient routing, causality, exact resume and
two-process equivalence. Everything uses tiny random-weight networks of the real architectures."""
import json, os, subprocess, sys, textwrap
from pathlib import Path

import pytest
import torch

from sound_video_gen.core import get_config
from sound_video_gen.model.ssvg import SSVG, load_ssvg
from sound_video_gen.train.ssvg import (SSVGTrainConfig, discriminator_loss, edit_losses, generate, load_frozen,
                                        model_losses, train_ssvg, _draws)
from sound_video_gen.train.common import item_generators

ROOT = Path(__file__).resolve().parent.parent
T, N_CLIPS = 3, 8


class ToyClips(torch.utils.data.Dataset):
    "Clips whose frame brightness follows a per-clip beat that is also in the audio windows."
    classes = ["rain", "wind"]
    def __len__(self): return N_CLIPS
    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        beat = torch.rand(T, generator=g)
        frames = (beat[:, None, None, None] * 2 - 1).expand(T, 3, 32, 32).clone()
        audio = beat[:, None, None, None].expand(T, 1, 32, 16).clone() * torch.rand(T, 1, 32, 16, generator=g)
        c = self.classes[i % 2]
        return {"frames": frames, "audio": audio, "class": c, "caption": f"{c} over hills", "label": i % 2}


def tiny_parts():
    from sound_video_gen.generators.stylegan2 import StyleGAN2Generator
    from sound_video_gen.multimodal.clip import load_clip
    from sound_video_gen.multimodal.audio_encoder import AudioEncoder
    torch.manual_seed(0)
    G = StyleGAN2Generator(get_config("stylegan2-tiny"))
    clip = load_clip("clip-tiny", None)
    fa = AudioEncoder(get_config("audio-encoder-tiny"))
    return G, clip, fa


def tiny_cfg(run_dir, **kw):
    base = dict(model=get_config("ssvg-tiny"), generator="stylegan2-tiny", clip="clip-tiny", clip_pretrained=None,
                run_dir=str(run_dir), max_steps=4, batch_size=2, ckpt_every=2, log_every=1, sample_every=0,
                progress=False, device="cpu", seed=1,
                discriminator=SSVGTrainConfig().discriminator.replace(channels=8, max_channels=16))
    base.update(kw)
    return SSVGTrainConfig(**base)


@pytest.fixture(scope="module")
def parts():
    return tiny_parts()


def test_tiny_training_runs_end_to_end(tmp_path, parts):
    G, clip, fa = parts
    cfg = tiny_cfg(tmp_path / "run", sample_every=4)
    rec = train_ssvg(cfg, ToyClips(), G=G, clip=clip, audio_encoder=fa)
    log = [json.loads(l) for l in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4]
    for key in ("d_image", "d_video", "g_image", "g_video", "clip_audio", "clip_text", "reg", "loss_model"):
        assert all(key in r and r[key] == r[key] and abs(r[key]) < 1e6 for r in log), key
    model = load_ssvg(tmp_path / "run" / "ssvg.safetensors")
    assert (model.cfg.num_ws, model.cfg.w_dim) == (G.num_ws, G.w_dim)
    assert (tmp_path / "run" / "samples" / "step-0000004.mp4").stat().st_size > 0
    assert json.loads((tmp_path / "run" / "config.json").read_text())["discriminator"]["resolution"] == G.img_resolution


def _one_batch(cfg, parts):
    G, clip, fa = parts
    frozen = load_frozen(cfg, torch.device("cpu"), G, clip, fa)
    mcfg = cfg.model.for_generator(G)
    from sound_video_gen.model.discriminators import ImageDiscriminator, VideoDiscriminator
    dcfg = cfg.discriminator.replace(resolution=G.img_resolution, num_frames=T)
    torch.manual_seed(0)
    model, D_img, D_vid = SSVG(mcfg), ImageDiscriminator(dcfg), VideoDiscriminator(dcfg)
    items = [ToyClips()[i] for i in range(2)]
    windows = torch.stack([it["audio"] for it in items])
    real = torch.stack([it["frames"] for it in items])
    w0, noise = _draws(model, G, 2, T, item_generators(0, 0, 0, 2), "cpu")
    text = frozen.clip.encode_text(["rain", "wind"])
    return frozen, model, D_img, D_vid, windows, real, w0, noise, text


def test_gradients_reach_exactly_the_trainable_modules(tmp_path, parts):
    cfg = tiny_cfg(tmp_path, r1_gamma=1.0, w_smooth=0.1)
    frozen, model, D_img, D_vid, windows, real, w0, noise, text = _one_batch(cfg, parts)
    frozen_modules = {"G": frozen.G, "clip": frozen.clip, "F_a": frozen.audio_encoder}
    ws, fake, _ = generate(model, frozen.G, windows, w0, noise, "all")
    D_img.requires_grad_(False); D_vid.requires_grad_(False)
    terms = model_losses(ws, fake, windows, frozen, D_img, D_vid, text, frozen.G.mapping.w_avg, cfg)
    assert set(terms) == {"g_image", "g_video", "clip_audio", "clip_text", "reg", "smooth"}
    for name, term in terms.items():
        model.zero_grad(set_to_none=True)
        term.backward(retain_graph=True)
        for part in (model.encoder, model.recurrent):
            got = sum(float(p.grad.abs().sum()) for p in part.parameters() if p.grad is not None)
            assert got > 0, f"{name} does not reach {type(part).__name__}"
        for m in (D_img, D_vid, *frozen_modules.values()):
            assert all(p.grad is None for p in m.parameters()), f"{name} leaks into {type(m).__name__}"
    D_img.requires_grad_(True); D_vid.requires_grad_(True)
    model.zero_grad(set_to_none=True)
    d_terms = discriminator_loss(D_img, D_vid, real, fake.detach(), cfg)
    assert set(d_terms) == {"d_image", "d_video", "r1_image", "r1_video"}
    sum(d_terms.values()).backward()
    for D in (D_img, D_vid):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in D.parameters() if p.dim() > 1)
    assert all(p.grad is None for p in model.parameters())
    for m in frozen_modules.values():
        assert all(p.grad is None and not p.requires_grad for p in m.parameters())


def test_edit_terms_train_the_encoder_as_a_displacement(tmp_path, parts):
    "ŵ = w + E_a(x): the edit terms reach E_a only (not the GRUs), use each clip's middle window, and vanish when off."
    cfg = tiny_cfg(tmp_path, w_edit=0.5, w_edit_keep=0.1)
    frozen, model, D_img, D_vid, windows, real, w0, noise, text = _one_batch(cfg, parts)
    G = frozen.G
    w = G.mapping(torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(3)), None, truncation_psi=0.7)
    terms = edit_losses(model, frozen, windows, w, text, cfg)
    assert set(terms) == {"edit_audio", "edit_text", "edit_keep"}
    for name, term in terms.items():
        model.zero_grad(set_to_none=True)
        term.backward(retain_graph=True)
        assert sum(float(p.grad.abs().sum()) for p in model.encoder.parameters() if p.grad is not None) > 0, name
        assert all(p.grad is None for p in model.recurrent.parameters()), name
        assert all(p.grad is None for m in (frozen.G, frozen.clip, frozen.audio_encoder) for p in m.parameters()), name
    dw = model.encoder(windows[:, T // 2])
    torch.testing.assert_close(terms["edit_keep"], 0.1 * dw.pow(2).sum(-1).mean())
    later = windows.clone(); later[:, T // 2 + 1:] += 1   # windows other than the middle one do not matter
    torch.testing.assert_close(edit_losses(model, frozen, later, w, text, cfg)["edit_audio"], terms["edit_audio"])
    assert edit_losses(model, frozen, windows, w, text, tiny_cfg(tmp_path)) == {}


def test_training_with_edit_terms_logs_them(tmp_path, parts):
    G, clip, fa = parts
    cfg = tiny_cfg(tmp_path / "run", max_steps=2, w_edit=1.0, w_edit_keep=0.1)
    rec = train_ssvg(cfg, ToyClips(), G=G, clip=clip, audio_encoder=fa)
    for key in ("edit_audio", "edit_text", "edit_keep"):
        assert key in rec and 0 <= rec[key] < 1e6, key


def test_render_steps_can_serve_the_edit_terms_alone(tmp_path, parts):
    "render_rollout=False: a render step renders only the edits, so no pixel term of the rollout appears."
    G, clip, fa = parts
    both = train_ssvg(tiny_cfg(tmp_path / "a", max_steps=2, w_edit=1.0), ToyClips(), G=G, clip=clip, audio_encoder=fa)
    edits = train_ssvg(tiny_cfg(tmp_path / "b", max_steps=2, w_edit=1.0, render_rollout=False), ToyClips(), G=G, clip=clip,
                       audio_encoder=fa)
    rollout_terms = {"g_image", "g_video", "clip_audio", "clip_text"}
    assert rollout_terms <= set(both) and not rollout_terms & set(edits)
    assert {"edit_audio", "edit_text"} <= set(edits)


def test_frame_t_does_not_depend_on_later_audio(parts):
    G = parts[0]
    model = SSVG(get_config("ssvg-tiny").for_generator(G)).eval()
    windows = torch.rand(2, 6, 1, 32, 16)
    w0 = model.initial(G, 2)
    noise = model.recurrent.draw_noise(2, 6, torch.Generator().manual_seed(0))
    with torch.no_grad():
        base = model.latents(windows, w0, noise=noise)
        for t in range(5):
            later = windows.clone(); later[:, t + 1:] = torch.rand_like(later[:, t + 1:])
            ws = model.latents(later, w0, noise=noise)
            assert torch.equal(ws[:, :t + 1], base[:, :t + 1]), t
            assert not torch.equal(ws[:, t + 1], base[:, t + 1]), t


def test_ablations_change_what_the_model_hears(parts):
    G = parts[0]
    model = SSVG(get_config("ssvg-tiny").for_generator(G)).eval()
    windows = torch.rand(1, 4, 1, 32, 16); other = torch.rand(1, 4, 1, 32, 16)
    w0 = model.initial(G, 1); noise = model.recurrent.draw_noise(1, 4, torch.Generator().manual_seed(0))
    with torch.no_grad():
        none_a, none_b = (model.latents(x, w0, noise=noise, sound="none") for x in (windows, other))
        assert torch.equal(none_a, none_b)                                    # the sound is ignored
        first = model.latents(windows, w0, noise=noise, sound="first")
        first_b = model.latents(torch.cat([windows[:, :1], other[:, 1:]], 1), w0, noise=noise, sound="first")
        assert torch.equal(first, first_b)                                    # only the first window counts
        assert not torch.equal(model.latents(windows, w0, noise=noise), model.latents(other, w0, noise=noise))


def _weights(path):
    from sound_video_gen.core import load_checkpoint
    return load_checkpoint(path)[0]


def test_resume_gives_the_same_weights(tmp_path, parts):
    G, clip, fa = parts
    straight = tiny_cfg(tmp_path / "a", max_steps=4)
    train_ssvg(straight, ToyClips(), G=G, clip=clip, audio_encoder=fa)
    first = tiny_cfg(tmp_path / "b", max_steps=2)
    train_ssvg(first, ToyClips(), G=G, clip=clip, audio_encoder=fa)

    class Killed(Exception): pass
    def kill_at_3(step, rec):
        if step == 3: raise Killed
    with pytest.raises(Killed):  # a crash after step 3, whose checkpoint (every 2 steps) is step 2
        train_ssvg(tiny_cfg(tmp_path / "b", max_steps=4), ToyClips(), G=G, clip=clip, audio_encoder=fa, on_step=kill_at_3)
    train_ssvg(tiny_cfg(tmp_path / "b", max_steps=4), ToyClips(), G=G, clip=clip, audio_encoder=fa)
    a, b = _weights(tmp_path / "a" / "checkpoint.safetensors"), _weights(tmp_path / "b" / "checkpoint.safetensors")
    for part in ("model", "d_image", "d_video"):
        for k, v in a["modules"][part].items():
            assert torch.equal(v, b["modules"][part][k]), (part, k)
    log_b = [json.loads(l)["step"] for l in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert log_b == [1, 2, 3, 4]


def test_config_mismatch_on_resume_is_refused(tmp_path, parts):
    from sound_video_gen.core import UserError
    G, clip, fa = parts
    train_ssvg(tiny_cfg(tmp_path / "r", max_steps=2), ToyClips(), G=G, clip=clip, audio_encoder=fa)
    with pytest.raises(UserError, match="different config"):
        train_ssvg(tiny_cfg(tmp_path / "r", max_steps=4, w_reg=3.0), ToyClips(), G=G, clip=clip, audio_encoder=fa)


def test_missing_audio_encoder_is_a_clear_error(tmp_path, parts):
    from sound_video_gen.core import UserError
    with pytest.raises(UserError, match="needs a trained audio encoder"):
        load_frozen(tiny_cfg(tmp_path, audio_encoder=None), torch.device("cpu"), G=parts[0], clip=parts[1])


SCRIPT = textwrap.dedent('''
    import sys, torch
    sys.path.insert(0, {tests!r})
    from test_ssvg import ToyClips, tiny_cfg, tiny_parts
    from sound_video_gen.train.ssvg import train_ssvg
    G, clip, fa = tiny_parts()
    train_ssvg(tiny_cfg({run!r}, max_steps=3, ckpt_every=3), ToyClips(), G=G, clip=clip, audio_encoder=fa)
''')


def test_two_process_torchrun_matches_one_process(tmp_path, parts):
    G, clip, fa = parts
    train_ssvg(tiny_cfg(tmp_path / "one", max_steps=3, ckpt_every=3), ToyClips(), G=G, clip=clip, audio_encoder=fa)
    script = tmp_path / "two.py"
    script.write_text(SCRIPT.format(tests=str(ROOT / "tests"), run=str(tmp_path / "two")))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                          "29517", str(script)], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    a, b = _weights(tmp_path / "one" / "checkpoint.safetensors"), _weights(tmp_path / "two" / "checkpoint.safetensors")
    for part in ("model", "d_image", "d_video"):
        for k, v in a["modules"][part].items():
            torch.testing.assert_close(b["modules"][part][k], v, rtol=1e-4, atol=1e-5, msg=f"{part}.{k}")


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "sound_video_gen.cli", "train-ssvg", *map(str, args)],
                          capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300, cwd=cwd)


@pytest.mark.parametrize("args,match", [(["missing_folder", "--run-dir", "r"], "does not exist"),
                                        ([".", "--run-dir", "r", "--set", "w_reg"], "KEY=VALUE"),
                                        ([".", "--run-dir", "r", "--set", "nonsense=1", "--generator", "stylegan2-tiny"], "unknown SSVGTrainConfig key"),
                                        ([".", "--run-dir", "r", "--set", "model.nonsense=1"], "unknown SSVGConfig key"),
                                        ([".", "--run-dir", "r", "--frames", "1", "--generator", "stylegan2-tiny"], "--frames")])
def test_cli_bad_input(tmp_path, args, match):
    res = _cli(*args, cwd=tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert match in res.stderr


@pytest.mark.slow
def test_cli_trains_on_synthscapes(tmp_path):
    from sound_video_gen.data.synthscapes import make_synthscapes
    make_synthscapes(tmp_path / "ss", classes=("rain", "wind"), n_per_class=3, seconds=1.5, size=32, fps=8,
                     splits=(1.0, 0.0, 0.0), progress=False)
    res = _cli(tmp_path / "ss", "--model", "ssvg-tiny", "--generator", "stylegan2-tiny", "--clip", "clip-tiny",
               "--clip-pretrained", "none", "--run-dir", tmp_path / "run", "--frames", 4, "--max-steps", 2,
               "--batch-size", 2, "--device", "cpu",
               "--set", "w_clip_audio=0", "model.mel=mel-tiny", "model.fps=8.0", "sample_every=0", "progress=false",
               "discriminator.channels=8", "discriminator.max_channels=16", "model.sound=first")
    assert res.returncode == 0, res.stderr[-2000:]
    assert (tmp_path / "run" / "ssvg.safetensors").exists()


# ---- truncated BPTT windows (train_frames) and warm starts (init_from) --------------------------------------

def test_prefix_rollout_continues_the_same_trajectory_without_gradients(tmp_path, parts):
    cfg = tiny_cfg(tmp_path)
    frozen, model, D_img, D_vid, windows, real, w0, noise, text = _one_batch(cfg, parts)
    model.train()
    ws_all, fr_all, _ = generate(model, frozen.G, windows, w0, noise, "all")
    ws_tail, fr_tail, _ = generate(model, frozen.G, windows, w0, noise, "all", prefix=2)
    assert ws_tail.shape[1] == fr_tail.shape[1] == T - 2
    assert torch.allclose(ws_tail, ws_all[:, 2:], atol=1e-5) and torch.allclose(fr_tail, fr_all[:, 2:], atol=1e-4)
    # the prefix's audio gets no gradient: only the window's Δw do
    win = windows.clone().requires_grad_(True)
    ws, _, _ = generate(model, frozen.G, win, w0, noise, "all", prefix=2)
    ws.sum().backward()
    assert win.grad[:, :2].abs().sum() == 0 and win.grad[:, 2:].abs().sum() > 0


def test_window_start_is_seeded_and_in_range():
    from sound_video_gen.train.ssvg import window_start
    starts = [window_start(0, s, 32, 8) for s in range(200)]
    assert min(starts) == 0 and max(starts) == 24 and len(set(starts)) > 10
    assert starts == [window_start(0, s, 32, 8) for s in range(200)] and window_start(0, 5, 8, 8) == 0


def test_window_start_p_fresh_starts_that_share_of_windows_at_frame_0():
    from sound_video_gen.core import UserError
    from sound_video_gen.train.ssvg import SSVGTrainConfig, window_start
    plain = [window_start(0, s, 64, 16) for s in range(400)]
    half = [window_start(0, s, 64, 16, p_fresh=0.5) for s in range(400)]
    assert all(window_start(0, s, 64, 16, p_fresh=1.0) == 0 for s in range(50))
    assert 0.4 < sum(p == 0 for p in half) / 400 < 0.6 and sum(p == 0 for p in plain) < 30
    assert all(h in (0, p) for h, p in zip(half, plain))     # a fresh start replaces the step's draw, it does not reseed
    assert half == [window_start(0, s, 64, 16, p_fresh=0.5) for s in range(400)]
    with pytest.raises(UserError, match="p_fresh"): SSVGTrainConfig(p_fresh=1.5)


def test_train_frames_trains_windows_and_resumes_exactly(tmp_path, parts):
    G, clip, fa = parts
    seen = []
    cfg = lambda d, n: tiny_cfg(tmp_path / d, max_steps=n, train_frames=2)
    train_ssvg(cfg("a", 4), ToyClips(), G=G, clip=clip, audio_encoder=fa, on_step=lambda s, r: seen.append(s))
    assert json.loads((tmp_path / "a" / "config.json").read_text())["train_frames"] == 2
    train_ssvg(cfg("b", 2), ToyClips(), G=G, clip=clip, audio_encoder=fa)
    train_ssvg(cfg("b", 4), ToyClips(), G=G, clip=clip, audio_encoder=fa)
    a, b = _weights(tmp_path / "a" / "checkpoint.safetensors"), _weights(tmp_path / "b" / "checkpoint.safetensors")
    assert a["modules"]["d_video"].keys() == b["modules"]["d_video"].keys()
    for part in ("model", "d_image", "d_video"):
        for k, v in a["modules"][part].items(): assert torch.equal(v, b["modules"][part][k]), (part, k)
    with pytest.raises(Exception, match="longer than the dataset"):
        train_ssvg(tiny_cfg(tmp_path / "c", train_frames=T + 1), ToyClips(), G=G, clip=clip, audio_encoder=fa)


def test_init_from_warm_starts_a_new_run(tmp_path, parts):
    G, clip, fa = parts
    train_ssvg(tiny_cfg(tmp_path / "a", max_steps=2), ToyClips(), G=G, clip=clip, audio_encoder=fa)
    src = _weights(tmp_path / "a" / "checkpoint.safetensors")["modules"]
    for init in ("checkpoint.safetensors", "ssvg.safetensors"):
        run = tmp_path / f"b-{init}"
        train_ssvg(tiny_cfg(run, max_steps=0, seed=7, init_from=str(tmp_path / "a" / init)), ToyClips(), G=G, clip=clip,
                   audio_encoder=fa)
        got = load_ssvg(run / "ssvg.safetensors").state_dict()
        assert all(torch.equal(v, src["model"][k]) for k, v in got.items())
    fresh = tmp_path / "c"
    train_ssvg(tiny_cfg(fresh, max_steps=0, seed=7), ToyClips(), G=G, clip=clip, audio_encoder=fa)
    assert not all(torch.equal(v, src["model"][k]) for k, v in load_ssvg(fresh / "ssvg.safetensors").state_dict().items())


def test_sync_span_asks_each_span_of_a_long_window_to_follow_its_own_loudness():
    from sound_video_gen.core import UserError
    from sound_video_gen.model.anchored import window_loudness
    from sound_video_gen.train.ssvg import sync_spans
    g = torch.Generator().manual_seed(0)
    B, T, span = 2, 32, 16
    windows = torch.rand(B, T, 1, 1, 1, generator=g).expand(B, T, 1, 8, 16)
    loud = window_loudness(windows, "window")
    step = loud + 5.0 * (torch.arange(T) >= span)               # each second follows its loudness, the second one faster
    ws = torch.zeros(B, T, 3, 2)
    ws[:, 1:, :, 0] = torch.cumsum(step[:, 1:], 1)[..., None]    # ‖w_t − w_{t−1}‖ = step_t
    terms = lambda s, n=T: model_losses(ws[:, :n], None, windows[:, :n], None, None, None, None, ws[:, 0],
                                        SSVGTrainConfig(w_sync=1.0, w_reg=0.0, sync_span=s))["sync"]
    assert float(terms(span)) < 1e-4                            # within each span the speed is the loudness ...
    assert float(terms(0)) > 0.5                                # ... but over the whole window the jump swamps it
    assert torch.equal(terms(span, 24), terms(0, 24))           # under two spans: one correlation over the window
    x = torch.arange(2 * 37).view(2, 37, 1)
    assert sync_spans(x, 16).shape == (4, 16, 1) and torch.equal(sync_spans(x, 16)[3], x[1, 16:32])
    with pytest.raises(UserError, match="sync_span"): SSVGTrainConfig(sync_span=2)


@pytest.mark.parametrize("size", [1, 2, 4, 8, 16])
def test_style_head_convolutions_as_matrix_products_equal_the_convolutions(monkeypatch, size):
    "E_a's head convolutions as unfold + one matrix product give nn.Conv2d's outputs and gradients; taken only in training, on small maps and large weights."
    from sound_video_gen.model import encoder
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(6, 10, 3, 2, 1)
    x = torch.randn(4, 6, size, size, requires_grad=True)
    matmul, unfold = [], torch.nn.functional.unfold
    monkeypatch.setattr(encoder.F, "unfold", lambda *a, **k: matmul.append(1) or unfold(*a, **k))
    encoder.head_conv2d(x, conv)
    assert not matmul                                                 # 540 weights: the convolution itself
    monkeypatch.setattr(encoder, "MATMUL_MIN_WEIGHTS", conv.weight.numel())
    y = encoder.head_conv2d(x, conv)
    assert len(matmul) == (size <= encoder.MATMUL_MAX_SIZE)          # larger maps run the convolution itself
    ref = conv(x)
    assert y.shape == ref.shape and (y - ref).abs().max() <= 1e-5 * ref.abs().max()
    gy = torch.randn_like(ref)
    got = torch.autograd.grad(y, [x, conv.weight, conv.bias], gy)
    want = torch.autograd.grad(ref, [x, conv.weight, conv.bias], gy)
    for a, b in zip(got, want): assert (a - b).abs().max() <= 1e-5 * b.abs().max()
    matmul.clear()
    with torch.no_grad(): assert torch.equal(encoder.head_conv2d(x, conv), conv(x))   # inference: the convolution
    assert not matmul
    head = encoder.GradualStyleBlock(6, 10, spatial=8)
    xh = torch.randn(3, 6, 8, 8)
    monkeypatch.setattr(encoder, "MATMUL_MAX_SIZE", 0)
    plain = head(xh)
    monkeypatch.setattr(encoder, "MATMUL_MAX_SIZE", 8)
    assert (head(xh) - plain).abs().max() <= 1e-5 * plain.abs().max() and len(matmul) == 3   # 8 -> 4 -> 2 -> 1
