"""The convention every training stage follows: exact resume on a real clip folder (random starts included), guard
rails before anything is written, a non-finite loss stops the run and keeps the last good checkpoint, run-folder
hygiene (config.json after the resume check, torn log lines, interrupted writes), and causal training."""
import json
import math

import pytest
import torch

from sound_video_gen.cli import dispatch
from sound_video_gen.core import UserError, get_config, load_checkpoint, run_cli
from sound_video_gen.data.clips import AVClipDataset
from sound_video_gen.data.synthscapes import make_synthscapes
from sound_video_gen.train.clip import AudioClipTrainConfig, ClipTrainConfig, train_audio_clip, train_clip
from sound_video_gen.train.common import NonFiniteLossError, check_hyperparameters
from sound_video_gen.train.ssvg import SSVGTrainConfig, train_ssvg

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    "A real SynthScapes folder: 2 classes × 4 clips of 1.5 s at 32², 8 fps."
    root = tmp_path_factory.mktemp("ss") / "data"
    make_synthscapes(root, classes=("rain", "thunderstorm"), n_per_class=4, seconds=1.5, size=32, fps=8,
                     splits=(1.0, 0.0, 0.0), progress=False)
    return root


def clips(folder, **kw):
    "Training clips with a random start per sample (the case that used to draw from the global RNG)."
    return AVClipDataset(folder, n_frames=3, fps=8, size=32, mel="mel-tiny", split="train", train=True, cache_dir=False,
                         warn=False, **kw)


@pytest.fixture(scope="module")
def parts():
    from sound_video_gen.generators.stylegan2 import StyleGAN2Generator
    from sound_video_gen.multimodal.audio_encoder import AudioEncoder
    from sound_video_gen.multimodal.clip import load_clip
    torch.manual_seed(0)
    return StyleGAN2Generator(get_config("stylegan2-tiny")), load_clip("clip-tiny", None), AudioEncoder(get_config("audio-encoder-tiny"))


def ssvg_cfg(run_dir, **kw):
    base = dict(model=get_config("ssvg-tiny").replace(mel="mel-tiny", fps=8.0), generator="stylegan2-tiny",
                clip="clip-tiny", clip_pretrained=None, run_dir=str(run_dir), max_steps=4, batch_size=2, ckpt_every=2,
                log_every=1, sample_every=0, progress=False, device="cpu", seed=3,
                discriminator=SSVGTrainConfig().discriminator.replace(channels=8, max_channels=16))
    base.update(kw)
    return SSVGTrainConfig(**base)


class Killed(RuntimeError): pass


def kill_at(n):
    def hook(step, rec):
        if step == n: raise Killed(f"simulated kill after step {n}")
    return hook


def states(run_dir):
    return load_checkpoint(run_dir / "checkpoint.safetensors")[0]


def assert_same(a, b, path="state"):
    "Bit-identical nests of tensors."
    if isinstance(a, torch.Tensor): assert torch.equal(a, b), path
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a: assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        for i, (x, y) in enumerate(zip(a, b, strict=True)): assert_same(x, y, f"{path}[{i}]")
    else: assert a == b, path


# ----------------------------------------------------------------------------------------------------------
# Exact resume on a real clip folder

def test_ssvg_resume_on_a_clip_folder_is_bit_identical(tmp_path, folder, parts):
    G, clip, fa = parts
    train_ssvg(ssvg_cfg(tmp_path / "a"), clips(folder), G=G, clip=clip, audio_encoder=fa)
    with pytest.raises(Killed):   # killed after step 3; the newest checkpoint is step 2
        train_ssvg(ssvg_cfg(tmp_path / "b"), clips(folder), G=G, clip=clip, audio_encoder=fa, on_step=kill_at(3))
    torch.rand(7)                 # whatever the global RNG does in between must not matter
    train_ssvg(ssvg_cfg(tmp_path / "b"), clips(folder), G=G, clip=clip, audio_encoder=fa)
    a, b = states(tmp_path / "a"), states(tmp_path / "b")
    assert_same(a["modules"], b["modules"])
    assert_same(a["optimizers"], b["optimizers"])
    la = [json.loads(l) for l in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    lb = [json.loads(l) for l in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lb] == [1, 2, 3, 4]
    assert [r["d_image"] for r in la] == [r["d_image"] for r in lb]


def test_random_starts_follow_the_item_seed_not_the_global_rng(folder):
    ds = clips(folder)
    torch.manual_seed(0); a = [ds[(i, 100 + i)]["start"] for i in range(len(ds))]
    torch.manual_seed(1); b = [ds[(i, 100 + i)]["start"] for i in range(len(ds))]
    assert a == b and len(set(a)) > 1


@pytest.mark.parametrize("stage", ["clip", "audio_clip"])
def test_clip_stages_resume_on_a_clip_folder_is_bit_identical(tmp_path, folder, stage):
    if stage == "clip":
        cfg = lambda d: ClipTrainConfig(model="clip-tiny", run_dir=str(d), max_steps=4, batch_size=4, lr=2e-3,
                                        ckpt_every=2, log_every=1, device="cpu", progress=False, class_prompt_p=0.5)
        run = lambda d, **kw: train_clip(cfg(d), clips(folder), **kw)
    else:
        torch.manual_seed(0)
        from sound_video_gen.multimodal.clip import load_clip
        frozen = load_clip("clip-tiny").freeze()
        cfg = lambda d: AudioClipTrainConfig(encoder=get_config("audio-encoder-tiny"), clip="clip-tiny", clip_pretrained=None,
                                             run_dir=str(d), max_steps=4, batch_size=4, ckpt_every=2, log_every=1,
                                             device="cpu", progress=False, text_source="class")
        run = lambda d, **kw: train_audio_clip(cfg(d), clips(folder), clip=frozen, **kw)
    run(tmp_path / "a")
    with pytest.raises(Killed): run(tmp_path / "b", on_step=kill_at(3))
    torch.rand(5)
    run(tmp_path / "b")
    a, b = states(tmp_path / "a"), states(tmp_path / "b")
    assert_same(a["modules"], b["modules"])
    assert_same(a["optimizers"], b["optimizers"])


# ----------------------------------------------------------------------------------------------------------
# Guard rails

@pytest.mark.parametrize("make", [
    lambda: ClipTrainConfig(lr=math.inf),
    lambda: ClipTrainConfig(lr=-1e-3),
    lambda: AudioClipTrainConfig(w_text=math.nan),
    lambda: SSVGTrainConfig(lr_encoder=math.inf),
    lambda: SSVGTrainConfig(betas=(0.5, 1.5)),
    lambda: SSVGTrainConfig(w_reg=-1.0),
    lambda: SSVGTrainConfig(r1_gamma=math.nan),
])
def test_bad_hyperparameters_are_refused(make):
    with pytest.raises(UserError, match="invalid"): make()


def test_check_hyperparameters_lets_good_configs_through():
    for cfg in (ClipTrainConfig(), AudioClipTrainConfig(), SSVGTrainConfig()): check_hyperparameters(cfg)


def test_cli_lr_inf_writes_nothing(tmp_path, folder, capsys):
    run_dir = tmp_path / "run"
    code = run_cli(dispatch, ["train-clip", str(folder), "--run-dir", str(run_dir), "--lr", "inf", "--model", "clip-tiny"])
    assert code == 2 and "finite" in capsys.readouterr().err
    assert not run_dir.exists()


class Poisoned(torch.utils.data.Dataset):
    "Clips whose frames turn to NaN once `poison` is set."
    accepts_item_seeds = True
    def __init__(self, ds): self.ds, self.poison = ds, False
    def __len__(self): return len(self.ds)
    def __getitem__(self, i):
        it = self.ds[i]
        if self.poison: it["frames"] = torch.full_like(it["frames"], math.nan)
        return it


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, folder, parts):
    G, clip, fa = parts
    ds = Poisoned(clips(folder))
    def poison_after_2(step, rec):
        if step == 2: ds.poison = True
    with pytest.raises(NonFiniteLossError, match="non-finite at step 3.*step 2"):
        train_ssvg(ssvg_cfg(tmp_path / "r", w_clip_audio=0.0, w_clip_text=0.0), ds, G=G, clip=clip, audio_encoder=fa,
                   on_step=poison_after_2)
    state, _, meta = load_checkpoint(tmp_path / "r" / "checkpoint.safetensors")
    assert meta["step"] == 2
    assert all(torch.isfinite(v).all() for v in state["modules"]["model"].values())


# ----------------------------------------------------------------------------------------------------------
# Run-folder hygiene

def test_torn_log_line_and_interrupted_write_do_not_block_a_resume(tmp_path, folder, parts):
    G, clip, fa = parts
    run = tmp_path / "r"
    with pytest.raises(Killed):
        train_ssvg(ssvg_cfg(run), clips(folder), G=G, clip=clip, audio_encoder=fa, on_step=kill_at(3))
    with open(run / "log.jsonl", "a") as f: f.write('{"step": 4, "ti')            # killed mid-line
    (run / ".checkpoint.safetensors.x1y2.tmp").write_bytes(b"half a checkpoint")    # killed mid-save
    train_ssvg(ssvg_cfg(run), clips(folder), G=G, clip=clip, audio_encoder=fa)
    assert [json.loads(l)["step"] for l in (run / "log.jsonl").read_text().splitlines()] == [1, 2, 3, 4]
    assert not list(run.glob(".*.tmp"))


def test_config_json_is_written_only_after_the_resume_check(tmp_path, folder, parts):
    G, clip, fa = parts
    run = tmp_path / "r"
    train_ssvg(ssvg_cfg(run, max_steps=2), clips(folder), G=G, clip=clip, audio_encoder=fa)
    before = (run / "config.json").read_text()
    with pytest.raises(UserError, match="different config"):
        train_ssvg(ssvg_cfg(run, max_steps=4, w_reg=0.5), clips(folder), G=G, clip=clip, audio_encoder=fa)
    assert (run / "config.json").read_text() == before


# ----------------------------------------------------------------------------------------------------------
# Stage 3 specifics

def test_batchnorm_encoder_is_causal_in_training():
    from sound_video_gen.model.ssvg import SSVG
    cfg = get_config("ssvg-tiny")
    model = SSVG(cfg.replace(encoder=cfg.encoder.replace(norm="batch"))).train()
    w = torch.rand(3, 4, 1, 32, 16)
    later = w.clone(); later[:, 2:] = torch.rand(3, 2, 1, 32, 16)
    a, b = model.offsets(w), model.offsets(later)
    assert torch.equal(a[:, :2], b[:, :2]) and not torch.equal(a[:, 2:], b[:, 2:])


def test_random_initial_latent_leaves_the_global_rng_alone(parts):
    from sound_video_gen.model.recurrent import initial_latent
    G = parts[0]
    draws = []
    for _ in range(2):
        torch.manual_seed(0)
        initial_latent(G, 2, "random")
        draws.append(torch.rand(4))
    assert torch.equal(*draws)


def test_train_ssvg_computes_no_discriminator_gradient_in_the_model_step(tmp_path, folder, parts, monkeypatch):
    "Counted inside train_ssvg itself: each D parameter receives exactly one gradient per step (the D step's)."
    import sound_video_gen.train.ssvg as stage3
    fired = {"image": 0, "video": 0}
    def counting(base, key):
        class Counting(base):
            def __init__(self, *a, **kw):
                super().__init__(*a, **kw)
                for p in self.parameters(): p.register_hook(lambda g: fired.__setitem__(key, fired[key] + 1))
        return Counting
    monkeypatch.setattr(stage3, "ImageDiscriminator", counting(stage3.ImageDiscriminator, "image"))
    monkeypatch.setattr(stage3, "VideoDiscriminator", counting(stage3.VideoDiscriminator, "video"))
    G, clip, fa = parts
    steps = 2
    train_ssvg(ssvg_cfg(tmp_path / "r", max_steps=steps), clips(folder), G=G, clip=clip, audio_encoder=fa)
    cfg = ssvg_cfg(tmp_path / "x").discriminator.replace(resolution=G.img_resolution, num_frames=3)
    n_img = sum(1 for _ in stage3.ImageDiscriminator.__mro__[1](cfg).parameters())
    n_vid = sum(1 for _ in stage3.VideoDiscriminator.__mro__[1](cfg).parameters())
    assert fired == {"image": steps * n_img, "video": steps * n_vid}


def test_stage3_trains_on_the_input_affine_generator_inference_renders_with(parts):
    "A StyleGAN3 G is frozen with the paper's input-affine trick in training too (a copy); input_affine=False keeps G."
    from sound_video_gen.generators.stylegan3 import StyleGAN3Generator
    from sound_video_gen.train.ssvg import load_frozen
    torch.manual_seed(0)
    G = StyleGAN3Generator(get_config("stylegan3-t-tiny"))
    with torch.no_grad(): G.synthesis.input.affine.weight.normal_()   # NVlabs initialises it to zero; a trained G's is not
    before = G.synthesis.input.affine.weight.detach().clone()
    cfg = ssvg_cfg("unused", generator="stylegan3-t-tiny", w_clip_audio=0.0, w_clip_text=0.0, w_edit=0.0)
    frozen = load_frozen(cfg, torch.device("cpu"), G=G)
    w = torch.randn(2, G.w_dim)
    with torch.no_grad(): feats = frozen.G.synthesis.input(w)
    assert torch.equal(feats[0], feats[1])                      # the Fourier input no longer follows w
    assert torch.equal(G.synthesis.input.affine.weight, before)  # the caller's G is untouched
    kept = load_frozen(cfg.replace(input_affine=False), torch.device("cpu"), G=G)
    with torch.no_grad(): feats = kept.G.synthesis.input(w)
    assert not torch.equal(feats[0], feats[1])
    # stage 2 generators (no Fourier input) are left as they are
    assert load_frozen(ssvg_cfg("unused", w_clip_audio=0.0, w_clip_text=0.0, w_edit=0.0), torch.device("cpu"), G=parts[0]).G is parts[0]


def test_a_run_from_before_a_config_field_existed_resumes_at_its_default(tmp_path, folder, parts):
    "A checkpoint whose config lacks a later field resumes when the field is at its default, and not otherwise."
    from safetensors import safe_open
    from safetensors.torch import save_file
    G, clip, fa = parts
    run = tmp_path / "r"
    train_ssvg(ssvg_cfg(run, max_steps=2), clips(folder), G=G, clip=clip, audio_encoder=fa)
    ck = run / "checkpoint.safetensors"
    with safe_open(str(ck), framework="pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    old = json.loads(meta["config"]); del old["input_affine"]
    save_file(tensors, str(ck), metadata={**meta, "config": json.dumps(old)})
    with pytest.raises(UserError, match="different config .*input_affine"):
        train_ssvg(ssvg_cfg(run, max_steps=4, input_affine=False), clips(folder), G=G, clip=clip, audio_encoder=fa)
    train_ssvg(ssvg_cfg(run, max_steps=4), clips(folder), G=G, clip=clip, audio_encoder=fa)
    assert [json.loads(l)["step"] for l in (run / "log.jsonl").read_text().splitlines()] == [1, 2, 3, 4]
