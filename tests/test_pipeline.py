"SoundToVideo, bundles and the generate / bundle commands: streaming equality, bounded memory, bad input."
import json, os, shutil, subprocess, sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from sound_video_gen.core import UserError, get_config, run_cli
from sound_video_gen.cli import dispatch
from sound_video_gen.generators.factory import create_generator
from sound_video_gen.model.ssvg import SSVG, save_ssvg
from sound_video_gen.apps.pipeline import SoundToVideo
from sound_video_gen.model.generation import GenerateOptions
from sound_video_gen.model.bundle import make_bundle, verify_bundle

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg", "CUDA_VISIBLE_DEVICES": ""}


def _tiny(arch="stylegan2-tiny", seed=0):
    G = create_generator(arch, seed=seed).eval()
    torch.manual_seed(seed)
    return G, SSVG(get_config("ssvg-tiny").for_generator(G)).eval()


def _sound(path, seconds=2.0, sr=22050, channels=1):
    t = np.arange(int(seconds * sr)) / sr
    y = 0.3 * np.sin(2 * np.pi * (200 + 300 * t) * t) + 0.2 * (np.sin(2 * np.pi * 3 * t) > 0.9)
    sf.write(path, np.stack([y] * channels, 1) if channels > 1 else y, sr)
    return path


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    d = tmp_path_factory.mktemp("b")
    G, model = _tiny()
    return make_bundle(d / "tiny", G, model, training={"data": "random", "steps": 0})


@pytest.fixture(scope="module")
def s2v(bundle):
    return SoundToVideo.from_pretrained(bundle)


def _one_sentence(e):
    msg = str(e.value)
    assert "\n" not in msg and msg.endswith(".") and len(msg) < 400, msg


# ---------------------------------------------------------------- streaming

@pytest.mark.parametrize("chunk,batch", [(1, 1), (3, 2), (5, 4), (7, 16)])
def test_streamed_equals_single_pass(s2v, tmp_path, chunk, batch):
    f = _sound(tmp_path / "s.wav", 2.5)
    one = s2v.generate(f, GenerateOptions(seed=3, w0="random"), batch_size=batch)
    parts = list(s2v.generate(f, GenerateOptions(seed=3, w0="random"), batch_size=batch, stream=True, chunk_frames=chunk))
    assert np.array_equal(np.concatenate(parts), one)
    assert one.shape == (20, 32, 32, 3) and one.dtype == np.uint8


def test_streamed_latents_equal_the_plain_model_path(s2v, tmp_path):
    from sound_video_gen.audio import frame_windows, load_mel
    f = _sound(tmp_path / "s.wav", 2.0, sr=44100)
    plan = s2v.plan(f)
    win = frame_windows(load_mel(f, s2v.mel_cfg), plan.n_frames, plan.fps, s2v.mel_cfg)
    w_avg = s2v.model.initial(s2v.G, 1)
    for w0, sound_start in (("w_avg", False), ("sound", True)):   # 'sound' starts the paper's rollout at w_avg + E_a(x_1)
        ref = s2v.model.latents(win[None], w_avg, generator=torch.Generator().manual_seed(5), sound_start=sound_start)[0]
        got = torch.cat(list(s2v.iter_latents(plan, GenerateOptions(seed=5, w0=w0), chunk_frames=3, batch_size=1)))
        assert (got - ref).abs().max() < 1e-6
    assert (got[0] - w_avg[0]).abs().max() > 1e-4


@pytest.fixture(scope="module")
def s2v_anchored(s2v):
    "The same generator with a sound-anchored model (random weights, noise on)."
    from sound_video_gen.model.ssvg import SSVG
    torch.manual_seed(1)
    cfg = get_config("ssvg-tiny").for_generator(s2v.G).replace(path="anchored")
    return SoundToVideo(s2v.G, SSVG(cfg).eval(), s2v.mel_cfg)


@pytest.mark.parametrize("chunk,batch", [(1, 1), (3, 2), (7, 16)])
def test_anchored_streaming_is_exact(s2v_anchored, tmp_path, chunk, batch):
    "The anchored path carries its running summary and hidden states across chunks: chunked = one pass, bit for bit."
    f = _sound(tmp_path / "s.wav", 2.5)
    one = s2v_anchored.generate(f, GenerateOptions(seed=3), batch_size=batch)
    parts = list(s2v_anchored.generate(f, GenerateOptions(seed=3), batch_size=batch, stream=True, chunk_frames=chunk))
    assert np.array_equal(np.concatenate(parts), one)
    plan = s2v_anchored.plan(f)
    a = torch.cat(list(s2v_anchored.iter_latents(plan, GenerateOptions(seed=3), batch_size=batch)))
    b = torch.cat(list(s2v_anchored.iter_latents(plan, GenerateOptions(seed=3), batch_size=batch, chunk_frames=chunk)))
    assert torch.equal(a, b)


def test_anchored_sound_sets_the_scene(s2v_anchored, tmp_path):
    "With β = 0 the anchored video is its anchor: w_avg plus the running mean of E_a, so two sounds give two scenes."
    from sound_video_gen.audio import frame_windows, load_mel
    f = _sound(tmp_path / "a.wav", 2.0)
    g = tmp_path / "b.wav"
    sf.write(g, 0.3 * np.random.default_rng(0).standard_normal(44100) * np.linspace(0, 1, 44100), 22050)
    plan = s2v_anchored.plan(f)
    ws = torch.cat(list(s2v_anchored.iter_latents(plan, GenerateOptions(beta=0.0))))
    win = frame_windows(load_mel(f, s2v_anchored.mel_cfg), plan.n_frames, plan.fps, s2v_anchored.mel_cfg)
    dws = s2v_anchored.model.offsets(win[None])[0]
    mean = dws.cumsum(0)[:len(ws)] / torch.arange(1, len(ws) + 1).view(-1, 1, 1)   # summary_frames >= these frames
    torch.testing.assert_close(ws, s2v_anchored.G.mapping.w_avg + mean, atol=1e-5, rtol=1e-5)
    other = torch.cat(list(s2v_anchored.iter_latents(s2v_anchored.plan(g), GenerateOptions(beta=0.0))))
    assert (other - ws).abs().max() > 1e-4


def test_stylegan3_gets_the_input_affine_trick():
    G, model = _tiny("stylegan3-t-tiny")
    with torch.no_grad(): G.synthesis.input.affine.weight.normal_()   # as after training: the input follows w
    w = torch.randn(2, G.w_dim)
    assert not torch.equal(G.synthesis.input(w[:1]), G.synthesis.input(w[1:]))
    s = SoundToVideo(G, model)
    assert s.input_affine and torch.equal(s.G.synthesis.input(w[:1]), s.G.synthesis.input(w[1:]))
    assert SoundToVideo(G, model, input_affine=False).input_affine is False


def test_save_writes_video_with_trimmed_sound(s2v, tmp_path):
    from sound_video_gen.data.clips import probe_video, read_av
    f = _sound(tmp_path / "st.wav", 3.0, sr=22050, channels=2)
    out = s2v.save(tmp_path / "o.mp4", f, start=1.0, seconds=1.5, preview=tmp_path / "o.png")
    info = probe_video(out)
    assert (info["n_frames"], info["fps"], info["has_audio"], info["audio_sr"]) == (12, 8.0, True, 22050)
    _, audio, _, sr = read_av(out)
    assert abs(len(audio) / sr - 1.5) < 0.05
    assert (tmp_path / "o.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.mp4", "o.png", "st.wav"]   # no temporary files left


def test_on_frames_counts_from_zero_to_the_total(s2v, tmp_path):
    f = _sound(tmp_path / "s.wav", 2.5)                 # 20 frames at 8 fps
    calls = []
    parts = list(s2v.iter_frames(s2v.plan(f), GenerateOptions(seed=3, w0="random"), batch_size=2, chunk_frames=6,
                                 on_frames=lambda d, n: calls.append((d, n))))
    assert calls == [(0, 20), (6, 20), (12, 20), (18, 20), (20, 20)]
    assert np.array_equal(np.concatenate(parts), s2v.generate(f, GenerateOptions(seed=3, w0="random"), batch_size=2))   # the same frames
    calls.clear()
    s2v.save(tmp_path / "o.mp4", f, batch_size=2, chunk_frames=6, on_frames=lambda d, n: calls.append((d, n)))
    assert calls == [(0, 20), (6, 20), (12, 20), (18, 20), (20, 20)]


class _Stop(Exception): pass


@pytest.mark.parametrize("stop_at", [0, 6, 20])
def test_raising_from_on_frames_stops_save_and_leaves_no_file(s2v, tmp_path, stop_at):
    f = _sound(tmp_path / "s.wav", 2.5)
    seen, unfinished = [], []
    def on_frames(done, total):
        seen.append(done)
        unfinished.extend(tmp_path.glob(".o.mp4.*.tmp"))
        if done == stop_at: raise _Stop()
    with pytest.raises(_Stop):
        s2v.save(tmp_path / "o.mp4", f, preview=tmp_path / "o.png", batch_size=2, chunk_frames=6, on_frames=on_frames)
    assert seen[-1] == stop_at and (stop_at == 0 or unfinished)          # past the first chunk, a file was under way
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.wav"]      # no video, no preview, no temporary file


def test_a_stopped_save_keeps_the_file_it_would_replace(s2v, tmp_path):
    f = _sound(tmp_path / "s.wav", 2.5)
    out = s2v.save(tmp_path / "o.mp4", f, GenerateOptions(seed=1))
    before = out.read_bytes()
    def stop(done, total):
        if done: raise _Stop()
    with pytest.raises(_Stop): s2v.save(out, f, GenerateOptions(seed=2), overwrite=True, batch_size=2, chunk_frames=6, on_frames=stop)
    assert out.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["o.mp4", "s.wav"]


def test_groups_hold_the_other_layers(s2v, tmp_path):
    f = _sound(tmp_path / "s.wav")
    ws = torch.cat(list(s2v.iter_latents(s2v.plan(f), GenerateOptions(groups=["coarse", "mid"]))))
    a, b = s2v.groups["fine"]
    assert torch.equal(ws[:, a:b], s2v.initial()[0, a:b].expand(len(ws), -1, -1))


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("make,match", [
    (lambda p: sf.write(p / "x.wav", np.zeros(16000), 16000), "is silent"),
    (lambda p: sf.write(p / "x.wav", 0.3 * np.ones(500), 16000), "shorter than one mel window"),
])
def test_bad_sounds(s2v, tmp_path, make, match):
    make(tmp_path)
    with pytest.raises(UserError, match=match) as e: s2v.save(tmp_path / "o.mp4", tmp_path / "x.wav")
    _one_sentence(e)
    assert not (tmp_path / "o.mp4").exists() and len(list(tmp_path.iterdir())) == 1


def test_video_without_sound(s2v, tmp_path):
    from sound_video_gen.data.clips import write_video
    write_video(tmp_path / "mute.mp4", np.zeros((8, 16, 16, 3), np.uint8), 8)
    with pytest.raises(UserError, match="video without sound") as e: s2v.generate(tmp_path / "mute.mp4")
    _one_sentence(e)


@pytest.mark.parametrize("kw,match", [
    (dict(fps=0), "fps must be"), (dict(fps=1e5), "fps must be"), (dict(fps=float("inf")), "fps must be"),
    (dict(seconds=-1), "seconds must be"), (dict(seconds=float("nan")), "seconds must be"),
    (dict(start=-2), "start must be"), (dict(start=100), "contains no audio samples after"),
    (dict(fps=0.1, seconds=1), "less than one frame"), (dict(batch_size=0), "batch_size must be"),
    (dict(chunk_frames=-1), "chunk_frames must be"), (dict(options={"beta": 1}), "options must be a GenerateOptions"),
])
def test_absurd_options(s2v, tmp_path, kw, match):
    f = _sound(tmp_path / "s.wav")
    with pytest.raises(UserError, match=match) as e: s2v.generate(f, **kw)
    _one_sentence(e)


@pytest.mark.parametrize("kw,match", [
    (dict(beta=float("nan")), "beta must be"), (dict(beta=11), "beta must be"), (dict(beta=True), "beta must be"),
    (dict(groups="ears"), "groups must name"), (dict(groups=[]), "groups must name"), (dict(seed=-1), "seed must be"),
    (dict(seed=2**32), "seed must be"), (dict(psi=float("inf"), w0="random"), "psi must be"), (dict(w0="sky"), "w0 must be"),
    (dict(w0=torch.zeros(2, 3, 4, 5)), "a given w0 must be"), (dict(sound="half"), "sound must be"),
])
def test_absurd_generate_options_are_refused_when_made(kw, match):
    with pytest.raises(UserError, match=match) as e: GenerateOptions(**kw)
    _one_sentence(e)


def test_seed_streams_are_independent_and_a_seed_repeats_its_video(s2v, tmp_path):
    "The rollout noise and a random w_0 come from separate sub-seeds: the first noise values are not w_0's z times σ."
    from sound_video_gen.model.generation import sub_seed
    rec, G = s2v.model.recurrent, s2v.G
    for seed in (0, 1, 12345):
        noise = rec.draw_noise(1, 1, torch.Generator().manual_seed(sub_seed(seed, "noise"))).flatten() / rec.cfg.noise_std
        z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(sub_seed(seed, "w0"))).flatten()
        n = min(len(noise), len(z))
        r = torch.corrcoef(torch.stack([noise[:n], z[:n]]))[0, 1]
        assert abs(r) < 0.5, (seed, float(r))        # one stream for both would give r = 1 exactly
    f = _sound(tmp_path / "s.wav", 1.0)
    opts = GenerateOptions(seed=7, w0="random")
    assert np.array_equal(s2v.generate(f, opts), s2v.generate(f, opts))
    assert not np.array_equal(s2v.generate(f, opts), s2v.generate(f, opts.replace(seed=8)))


def test_bundle_with_missing_or_altered_file(bundle, tmp_path):
    missing = Path(shutil.copytree(bundle, tmp_path / "missing"))
    (missing / "ssvg.safetensors").unlink()
    with pytest.raises(UserError, match="is missing its ssvg file") as e: SoundToVideo.from_pretrained(missing)
    _one_sentence(e)
    altered = Path(shutil.copytree(bundle, tmp_path / "altered"))
    with open(altered / "generator.safetensors", "r+b") as f: f.seek(-3, 2); f.write(b"abc")
    with pytest.raises(UserError, match="was altered") as e: verify_bundle(altered)
    _one_sentence(e)


def test_bundle_whose_parts_disagree_on_wplus(bundle, tmp_path):
    from sound_video_gen.core import file_sha256 as sha256_file
    bad = Path(shutil.copytree(bundle, tmp_path / "bad"))
    G3, _ = _tiny("stylegan3-t-tiny")
    _, model = _tiny()
    other = SSVG(get_config("ssvg-tiny").replace(encoder=get_config("ssvg-tiny").encoder.replace(num_ws=G3.num_ws + 1),
                                                  recurrent=get_config("ssvg-tiny").recurrent.replace(num_ws=G3.num_ws + 1)))
    save_ssvg(bad / "ssvg.safetensors", other)
    card = json.loads((bad / "bundle.json").read_text())
    card["files"]["ssvg"]["sha256"] = sha256_file(bad / "ssvg.safetensors")
    (bad / "bundle.json").write_text(json.dumps(card))
    with pytest.raises(UserError, match="does not fit together: the generator's W\\+") as e: verify_bundle(bad)
    _one_sentence(e)
    with pytest.raises(UserError, match="W\\+"): make_bundle(tmp_path / "b2", G3, model)
    assert not (tmp_path / "b2").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".b2")]


def test_from_pretrained_names_and_hub_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="no bundle named 'nonexistent' ships") as e: SoundToVideo.from_pretrained("nonexistent")
    _one_sentence(e)
    with pytest.raises(UserError, match="HF_HUB_OFFLINE=1") as e: SoundToVideo.from_pretrained("nobody/no-such-bundle")
    _one_sentence(e)


# ---------------------------------------------------------------- the commands

def test_generate_and_bundle_commands(bundle, tmp_path, capsys):
    f = _sound(tmp_path / "thunder.wav", 1.5)
    out = tmp_path / "thunder.mp4"
    assert run_cli(dispatch, ["generate", str(f), "-o", str(out), "--model", str(bundle), "--seed", "2", "--groups",
                              "coarse,fine", "--beta", "0.4", "--preview", "--quiet"]) == 0
    assert out.is_file() and out.with_suffix(".png").is_file()
    assert run_cli(dispatch, ["generate", str(f), "-o", str(out), "--model", str(bundle), "--quiet"]) == 2   # exists
    assert "already exists" in capsys.readouterr().err
    assert run_cli(dispatch, ["bundle", str(bundle), "--verify"]) == 0
    # from a run folder: ssvg.safetensors + config.json naming the generator
    run = tmp_path / "run"; run.mkdir()
    shutil.copy(bundle / "ssvg.safetensors", run / "ssvg.safetensors")
    shutil.copy(bundle / "generator.safetensors", tmp_path / "g.safetensors")
    (run / "config.json").write_text(json.dumps({"generator": str(tmp_path / "g.safetensors"), "max_steps": 7}))
    assert run_cli(dispatch, ["bundle", str(tmp_path / "nb"), "--model", str(run), "--data", "synthscapes"]) == 0
    card = verify_bundle(tmp_path / "nb")
    assert card["training"]["data"] == "synthscapes" and card["training"]["max_steps"] == 7


def _swap(argv, **opts):
    "argv with each `--name value` of opts replaced."
    out = list(argv)
    for k, v in opts.items(): out[out.index(f"--{k}") + 1] = v
    return out


def test_generate_options_change_the_video_and_equal_options_repeat_it(bundle, tmp_path):
    "--seed, --beta and --groups each change the frames; the same options give the same frames."
    from sound_video_gen.metrics.distances import read_video_frames
    f = _sound(tmp_path / "s.wav", 1.5)
    def frames(name, argv):
        out = tmp_path / f"{name}.mp4"
        assert run_cli(dispatch, ["generate", str(f), "-o", str(out), "--model", str(bundle), "--quiet", *argv]) == 0
        return read_video_frames(out).float()
    base = ["--seed", "2", "--beta", "0.4", "--groups", "coarse,fine", "--w0", "random"]
    a = frames("a", base)
    assert torch.equal(a, frames("again", base))
    for name, opts in {"seed": {"seed": "3"}, "beta": {"beta": "1.5"}, "groups": {"groups": "coarse"}}.items():
        b = frames(name, _swap(base, **opts))
        assert a.shape == b.shape and (a - b).abs().mean() > 0.5, name   # h264 keeps equal inputs equal; these differ


def test_edit_image_alpha_and_groups_change_the_picture(bundle, tmp_path):
    from PIL import Image
    f = _sound(tmp_path / "s.wav", 1.5)
    def picture(name, argv):
        out = tmp_path / f"{name}.png"
        assert run_cli(dispatch, ["edit-image", str(f), "--seed", "1", "-o", str(out), "--model", str(bundle), *argv]) == 0
        return np.asarray(Image.open(out), dtype=np.float32)
    base = ["--alpha", "2", "--groups", "coarse,mid,fine"]
    a = picture("a", base)
    assert np.array_equal(a, picture("again", base))
    unedited = picture("zero", _swap(base, alpha="0"))
    fine = picture("fine", _swap(base, groups="fine"))
    for name, b in {"alpha": unedited, "groups": fine}.items():
        assert a.shape == b.shape and np.abs(a - b).mean() > 0.5, name
    assert np.abs(fine - unedited).mean() > 0   # the fine groups alone edit too


def test_generate_command_bad_input_is_one_sentence(bundle, tmp_path):
    sf.write(tmp_path / "quiet.wav", np.zeros(16000), 16000)
    for args in (["generate", str(tmp_path / "quiet.wav"), "--model", str(bundle)],
                 ["generate", str(tmp_path / "quiet.wav"), "--model", "demo"],
                 ["generate", str(_sound(tmp_path / "s.wav")), "--model", str(bundle), "--fps", "-3"]):
        res = subprocess.run([sys.executable, "-m", "sound_video_gen.cli", *args], capture_output=True, text=True, env=ENV, timeout=120)
        lines = [l for l in res.stderr.splitlines() if l.strip()]
        assert res.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["quiet.wav", "s.wav"]


def test_generate_folder(bundle, tmp_path):
    src = tmp_path / "in"; src.mkdir()
    _sound(src / "a.wav", 1.0); _sound(src / "b.flac", 1.0)
    assert run_cli(dispatch, ["generate", str(src), "-o", str(tmp_path / "out"), "--model", str(bundle), "--quiet"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.mp4", "b.mp4"]


# ---------------------------------------------------------------- long sounds

@pytest.mark.slow
def test_one_hour_in_bounded_memory(bundle, tmp_path):
    "A 1-hour sound (8 kHz) streams to an mp4 with peak RSS below 2 GB (own process)."
    code = f"""
import numpy as np, soundfile as sf, resource, torch
from sound_video_gen.apps.pipeline import SoundToVideo
torch.set_num_threads(2)
sr = 8000
with sf.SoundFile({str(tmp_path / 'hour.wav')!r}, 'w', sr, 1) as f:
    for i in range(60):
        t = np.arange(60 * sr) / sr + 60 * i
        f.write((0.3 * np.sin(2 * np.pi * 300 * t) * (1 + np.sin(t))).astype(np.float32))
s2v = SoundToVideo.from_pretrained({str(bundle)!r})
s2v.save({str(tmp_path / 'hour.mp4')!r}, {str(tmp_path / 'hour.wav')!r}, fps=4, batch_size=64, chunk_frames=256)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=3000)
    assert res.returncode == 0, res.stderr
    assert int(res.stdout.split()[-1]) < 2048


def test_half_precision_bundle(tmp_path, bundle):
    "dtype='float16' stores every floating-point weight in half precision; loading casts back and frames barely move."
    from sound_video_gen.core import load_checkpoint
    G, model = _tiny()
    half = make_bundle(tmp_path / "half", G, model, dtype="float16")
    full_card, half_card = (json.loads((b / "bundle.json").read_text()) for b in (bundle, half))
    for role in ("generator", "ssvg"):
        state, _, meta = load_checkpoint(half / half_card["files"][role]["path"])
        assert meta["stored_dtype"] == "float16"
        assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.float16}
        assert half_card["files"][role]["bytes"] < 0.6 * full_card["files"][role]["bytes"]
    a = SoundToVideo.from_pretrained(bundle)
    b = SoundToVideo.from_pretrained(half)
    assert all(p.dtype == torch.float32 for p in b.G.parameters())
    wav = _sound(tmp_path / "s.wav")
    fa, fb = a.generate(wav, seconds=1.0), b.generate(wav, seconds=1.0)
    assert fa.shape == fb.shape and np.abs(fa.astype(int) - fb.astype(int)).mean() < 2.0
    with pytest.raises(UserError, match="dtype must be"): make_bundle(tmp_path / "bad", G, model, dtype="int8")
    assert not (tmp_path / "bad").exists()


def test_a_killed_generate_leaves_nothing_behind_after_the_next_run(bundle, tmp_path):
    "kill -9 mid-write leaves `.out.mp4.PID.XXXX.tmp`; the next write to the same output removes it (its process is gone)."
    import signal, time
    f = _sound(tmp_path / "s.wav", 6.0)
    out = tmp_path / "v.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "sound_video_gen.cli", "generate", str(f), "-o", str(out), "--model", str(bundle),
                             "--quiet", "--batch-size", "1"], env=ENV)
    deadline = time.time() + 120
    while not list(tmp_path.glob(".v.mp4.*.tmp")) and time.time() < deadline and proc.poll() is None: time.sleep(0.02)
    proc.send_signal(signal.SIGKILL); proc.wait()
    left = list(tmp_path.glob(".v.mp4.*.tmp"))
    assert left and not out.exists()                      # the kill left a temporary file, and no half video
    assert run_cli(dispatch, ["generate", str(f), "-o", str(out), "--model", str(bundle), "--quiet"]) == 0
    assert out.is_file() and not list(tmp_path.glob(".v.mp4.*.tmp"))


def test_an_output_that_is_an_input_is_refused_even_with_overwrite(bundle, tmp_path, capsys):
    f = _sound(tmp_path / "s.wav", 1.5)
    clip = tmp_path / "c.mp4"
    assert run_cli(dispatch, ["generate", str(f), "-o", str(clip), "--model", str(bundle), "--quiet"]) == 0
    before = clip.read_bytes()
    os.link(clip, tmp_path / "hard.mp4")
    for out in (clip, tmp_path / "hard.mp4"):
        assert run_cli(dispatch, ["edit-video", str(clip), str(f), "-o", str(out), "--model", str(bundle), "--overwrite"]) == 2
        assert "would destroy the input" in capsys.readouterr().err
    assert clip.read_bytes() == before
    assert run_cli(dispatch, ["mel", str(f), "-o", str(f.with_suffix(".png"))]) == 0
