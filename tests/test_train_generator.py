"""Stage 0: the StyleGAN2-ADA discriminator (NVlabs layout) and `train_generator` (convergence, exact resume, guard rails, CLI)."""
import json, math, pickle
from pathlib import Path

import pytest
import torch

from sound_video_gen.core import UserError, get_config, load_checkpoint, read_checkpoint_meta
from sound_video_gen.generators.discriminator import StyleGAN2Discriminator, StyleGAN2DiscriminatorConfig
from sound_video_gen.generators.factory import create_generator, load_discriminator, load_generator
from sound_video_gen.train.generator import diff_augment, step_generator, train_generator

from test_stylegan import NVStandIn, nv_names  # noqa: F401  (fixture)

torch.set_num_threads(2)

# The state dict of NVlabs' training.networks_stylegan2.Discriminator(c_dim=0, img_resolution=16, img_channels=3,
# channel_base=64, channel_max=16), printed from the reference code (NVlabs/stylegan3 at c233a91).
NVLABS_D16 = {
    'b16.resample_filter': [4, 4], 'b16.fromrgb.weight': [4, 3, 1, 1], 'b16.fromrgb.bias': [4], 'b16.fromrgb.resample_filter': [4, 4],
    'b16.conv0.weight': [4, 4, 3, 3], 'b16.conv0.bias': [4], 'b16.conv0.resample_filter': [4, 4], 'b16.conv1.weight': [8, 4, 3, 3],
    'b16.conv1.bias': [8], 'b16.conv1.resample_filter': [4, 4], 'b16.skip.weight': [8, 4, 1, 1], 'b16.skip.resample_filter': [4, 4],
    'b8.resample_filter': [4, 4], 'b8.conv0.weight': [8, 8, 3, 3], 'b8.conv0.bias': [8], 'b8.conv0.resample_filter': [4, 4],
    'b8.conv1.weight': [16, 8, 3, 3], 'b8.conv1.bias': [16], 'b8.conv1.resample_filter': [4, 4], 'b8.skip.weight': [16, 8, 1, 1],
    'b8.skip.resample_filter': [4, 4], 'b4.conv.weight': [16, 17, 3, 3], 'b4.conv.bias': [16], 'b4.conv.resample_filter': [4, 4],
    'b4.fc.weight': [16, 256], 'b4.fc.bias': [16], 'b4.out.weight': [1, 16], 'b4.out.bias': [1]}


def tiny_cfg(tmp_path, **kw):
    return get_config("train-generator-tiny").replace(run_dir=str(tmp_path / "run"), **kw)


def toy_images(n=256, size=16, seed=0):
    "Sky over ground with a random horizon and colours: a toy landscape dataset."
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(size).view(1, size, 1)
    horizon = torch.randint(size // 4, 3 * size // 4, (n, 1, 1), generator=g)
    sky = torch.tensor([60, 120, 220]).view(1, 3, 1, 1) + torch.randint(-40, 40, (n, 3, 1, 1), generator=g)
    ground = torch.tensor([60, 140, 50]).view(1, 3, 1, 1) + torch.randint(-40, 40, (n, 3, 1, 1), generator=g)
    img = torch.where((y < horizon).unsqueeze(1), sky, ground).expand(n, 3, size, size).clone()
    return img.clamp(0, 255).to(torch.uint8)


def pool_detector(img):
    "Toy Fréchet features: the 4×4 average-pooled image (48-d)."
    return torch.nn.functional.avg_pool2d(img.float() / 127.5 - 1, img.shape[-1] // 4).flatten(1).double()
pool_detector.name = "pool"


# ---------------------------------------------------------------- discriminator

@pytest.mark.parametrize("arch", ["resnet", "orig", "skip"])
@pytest.mark.parametrize("res", [8, 32])
def test_discriminator_shapes(arch, res):
    D = StyleGAN2Discriminator(img_resolution=res, channel_base=128, channel_max=16, architecture=arch)
    assert D.block_resolutions == [2 ** i for i in range(int(math.log2(res)), 2, -1)]
    out = D(torch.randn(8, 3, res, res))
    assert out.shape == (8, 1) and torch.isfinite(out).all()
    with pytest.raises(UserError, match="divide the batch"):
        D(torch.randn(6, 3, res, res))
    with pytest.raises(UserError, match="D expects images"):
        D(torch.randn(4, 3, res * 2, res * 2))


def test_discriminator_has_nvlabs_names_and_shapes():
    D = StyleGAN2Discriminator(img_resolution=16, channel_base=64, channel_max=16)
    assert {k: list(v.shape) for k, v in D.state_dict().items()} == NVLABS_D16


def test_discriminator_loads_nvlabs_state_dict_and_pickle(tmp_path, nv_names):
    g = torch.Generator().manual_seed(0)
    nv_state = {k: (torch.randn(s, generator=g) if "filter" not in k else StyleGAN2Discriminator(img_resolution=16, channel_base=64,
                channel_max=16).state_dict()[k]) for k, s in NVLABS_D16.items()}
    D = StyleGAN2Discriminator(img_resolution=16, channel_base=64, channel_max=16)
    D.load_state_dict(nv_state)   # strict: every NVlabs name, no extra
    x = torch.randn(4, 3, 16, 16)
    # the same D pickled the way NVlabs persists it, with the constructor arguments its train.py records
    kw = dict(c_dim=0, img_resolution=16, img_channels=3, channel_base=64, channel_max=16, num_fp16_res=4, conv_clamp=256,
              block_kwargs=nv_names.EasyDict(freeze_layers=0), mapping_kwargs=nv_names.EasyDict(),
              epilogue_kwargs=nv_names.EasyDict(mbstd_group_size=4))
    f = tmp_path / "network-snapshot-000000.pkl"
    G = create_generator("stylegan2-tiny", seed=0)
    f.write_bytes(pickle.dumps({"G": None, "D": NVStandIn(nv_names, D, "Discriminator", kw), "G_ema": None}))
    D2 = load_discriminator(f)
    assert D2.cfg == StyleGAN2DiscriminatorConfig(img_resolution=16, channel_base=64, channel_max=16)
    with torch.no_grad():
        assert torch.equal(D2(x), D(x))
    assert nv_names.ran == []
    # a pickle without D, and a D with an unsupported argument
    f.write_bytes(pickle.dumps({"G_ema": NVStandIn(nv_names, G, "Generator", {})}))
    with pytest.raises(UserError, match="no 'D'"):
        load_discriminator(f)
    f.write_bytes(pickle.dumps({"D": NVStandIn(nv_names, D, "Discriminator", dict(kw, c_dim=4))}))
    with pytest.raises(UserError, match="conditional"):
        load_discriminator(f)


def test_diff_augment_is_differentiable_and_seeded():
    x = (torch.rand(4, 3, 16, 16) * 2 - 1).requires_grad_(True)
    a = diff_augment(x, "color,translation,cutout", step_generator(0, 5, "Dmain"))
    b = diff_augment(x, "color,translation,cutout", step_generator(0, 5, "Dmain"))
    c = diff_augment(x, "color,translation,cutout", step_generator(0, 6, "Dmain"))
    assert torch.equal(a, b) and not torch.equal(a, c) and a.shape == x.shape
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert torch.equal(diff_augment(x, "", step_generator(0, 0)), x)
    # a process's rows of a global batch get exactly the augmentation one process gives those rows
    halves = [diff_augment(x[s:s + 2], "color,translation,cutout", step_generator(0, 5, "Dmain"), rows=(s, 4)) for s in (0, 2)]
    assert torch.equal(torch.cat(halves), a)


# ---------------------------------------------------------------- guard rails

@pytest.mark.parametrize("bad", [dict(G_lr=float("nan")), dict(D_lr=0.0), dict(G_lr=5.0), dict(betas=[0.0, 1.0]),
                                 dict(betas=[float("inf"), 0.99]), dict(r1_gamma=float("nan")), dict(r1_gamma=-1.0),
                                 dict(augment="rotate")])
def test_bad_values_refused_before_anything_is_written(tmp_path, bad):
    with pytest.raises(UserError, match="GeneratorTrainConfig"):
        train_generator(tiny_cfg(tmp_path, **bad), toy_images(16))
    assert not (tmp_path / "run").exists()


def test_non_finite_loss_stops_and_keeps_last_checkpoint(tmp_path):
    cfg = tiny_cfg(tmp_path, max_steps=4, ckpt_every=2, sample_every=0)
    G = create_generator(cfg.generator_config(), seed=0)
    def poison(step, rec):
        if step == 2:
            with torch.no_grad(): G.synthesis.b4.const.fill_(float("nan"))
    with pytest.raises(UserError, match=r"step 3: the G loss is nan .* last good checkpoint \(step 2\)"):
        train_generator(cfg, toy_images(32), G=G, callback=poison)
    _, meta = read_checkpoint_meta(tmp_path / "run" / "checkpoint.safetensors")
    assert meta["step"] == 2


# ---------------------------------------------------------------- training

def _ckpt_tensors(path, parts=("modules", "optimizers", "extra")):
    "The checkpoint's tensors (and, for the RNG part, its plain numbers as tensors) by dotted key, and its meta."
    state, _, meta = load_checkpoint(path)
    out = {}
    def walk(o, key):
        if isinstance(o, torch.Tensor): out[key] = o
        elif isinstance(o, (int, float)) and not isinstance(o, bool): out[key] = torch.tensor(o)
        elif isinstance(o, dict): [walk(v, f"{key}.{k}") for k, v in o.items()]
        elif isinstance(o, (list, tuple)): [walk(v, f"{key}.{i}") for i, v in enumerate(o)]
    walk({k: state[k] for k in parts}, "")
    return out, meta


def test_kill_and_resume_is_bit_identical_on_synthscapes(tmp_path):
    from sound_video_gen.data.synthscapes import make_synthscapes
    data = tmp_path / "ss"
    make_synthscapes(data, classes=("rain", "volcano"), n_per_class=2, seconds=1.0, size=16, fps=8, progress=False)
    cfg = dict(max_steps=7, ckpt_every=3, sample_every=3, log_every=1, r1_interval=2, style_mixing_prob=0.9, pl_weight=2.0,
               pl_interval=2, frames_per_clip=4)
    a = tiny_cfg(tmp_path / "a", **cfg)
    train_generator(a, data)
    b = tiny_cfg(tmp_path / "b", **cfg)
    class Killed(Exception): pass
    def kill(step, rec):
        if step == 5: raise Killed   # dies after the checkpoint at step 3, with steps 4-5 logged
    with pytest.raises(Killed):
        train_generator(b, data, callback=kill)
    train_generator(b, data)         # resumes from step 3
    ta, ma = _ckpt_tensors(tmp_path / "a" / "run" / "checkpoint.safetensors")
    tb, mb = _ckpt_tensors(tmp_path / "b" / "run" / "checkpoint.safetensors")
    assert ma["step"] == mb["step"] == 7 and ta.keys() == tb.keys()
    assert all(torch.equal(ta[k], tb[k]) for k in ta), [k for k in ta if not torch.equal(ta[k], tb[k])][:5]
    strip = lambda p: [{k: v for k, v in json.loads(l).items() if k not in ("time", "sec_per_step")} for l in p.read_text().splitlines()]
    la, lb = strip(tmp_path / "a" / "run" / "log.jsonl"), strip(tmp_path / "b" / "run" / "log.jsonl")
    assert la == lb and [r["step"] for r in la] == list(range(1, 8))
    # G_ema is a plain generator file; samples are written
    G = load_generator(tmp_path / "b" / "run" / "G_ema.safetensors")
    assert G.img_resolution == 16 and G(torch.randn(2, G.z_dim)).shape == (2, 3, 16, 16)
    assert {p.name for p in (tmp_path / "b" / "run" / "samples").iterdir()} == {"reals.png", "fakes000003.png", "fakes000006.png", "fakes000007.png"}
    # a different config cannot resume the run
    with pytest.raises(UserError, match="different config"):
        train_generator(b.replace(G_lr=0.001, max_steps=9), data)


KILL_SCRIPT = """
import os, signal, sys, torch
sys.path.insert(0, {tests!r})
from test_train_generator import kill_cfg
from sound_video_gen.train.generator import train_generator
def kill(step, rec):
    if step == {at}: os.kill(os.getpid(), signal.SIGKILL)   # after the checkpoint of step {at}, before the export
train_generator(kill_cfg({run!r}), {data!r}, callback=kill)
"""


def kill_cfg(run_dir):
    return get_config("train-generator-tiny").replace(run_dir=str(run_dir), max_steps=4, ckpt_every=2, sample_every=0,
                                                     log_every=1, frames_per_clip=2, progress=False, device="cpu")


def test_kill_between_final_checkpoint_and_export_resumes_to_the_final_g_ema(tmp_path):
    "kill -9 after the last checkpoint, before G_ema.safetensors is written: the resume trains nothing and exports it."
    import os, subprocess, sys
    from sound_video_gen.data.synthscapes import make_synthscapes
    from sound_video_gen.cli import dispatch
    data = tmp_path / "ss"
    make_synthscapes(data, classes=("rain", "volcano"), n_per_class=2, seconds=1.0, size=16, fps=8, progress=False)
    env = {**os.environ, "OMP_NUM_THREADS": "2", "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    def run(name, at):   # both runs in a fresh process with the same thread count: bitwise comparable
        script = tmp_path / f"{name}.py"
        script.write_text(KILL_SCRIPT.format(tests=str(Path(__file__).parent), run=str(tmp_path / name), data=str(data), at=at))
        return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300)
    res = run("clean", -1)
    assert res.returncode == 0, res.stderr[-2000:]
    res = run("killed", 4)
    assert res.returncode == -9, res.stderr[-2000:]
    run = tmp_path / "killed"
    assert read_checkpoint_meta(run / "checkpoint.safetensors")[1]["step"] == 4
    stale = json.loads(_header(run / "G_ema.safetensors")).get("step")
    assert stale == 2           # the export the kill left behind is the previous checkpoint's
    cfg_file = tmp_path / "cfg.json"
    kill_cfg(run).to_json(cfg_file)
    assert dispatch(["train-generator", str(data), "--run-dir", str(run), "--config", str(cfg_file)]) == 0
    a, b = load_generator(tmp_path / "clean" / "G_ema.safetensors"), load_generator(run / "G_ema.safetensors")
    for (k, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), k
    assert json.loads(_header(run / "G_ema.safetensors"))["step"] == 4


def _header(path):
    "The `meta` JSON of a generator file."
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f: return f.metadata()["meta"]


def test_resuming_a_complete_run_says_nothing_to_do(tmp_path, capsys):
    from sound_video_gen.cli import dispatch
    cfg = tiny_cfg(tmp_path, max_steps=2, ckpt_every=0, sample_every=0, log_every=1)
    train_generator(cfg, toy_images(16))
    images = tmp_path / "img"
    images.mkdir()
    from sound_video_gen.train.generator import save_png
    for i, im in enumerate(toy_images(16)): save_png(im, images / f"{i:02d}.png")
    cfg_file = tmp_path / "cfg.json"
    cfg.to_json(cfg_file)
    before = (tmp_path / "run" / "log.jsonl").read_text()
    assert dispatch(["train-generator", str(images), "--run-dir", cfg.run_dir, "--config", str(cfg_file)]) == 0
    out = capsys.readouterr().out
    assert "nothing to do: the run in" in out and "is complete (step 2 of 2)" in out
    assert (tmp_path / "run" / "log.jsonl").read_text() == before


def test_two_identical_runs_save_the_same_global_rng_states(tmp_path):
    "Stage 0 seeds Python's and NumPy's global RNGs, so the checkpoint's saved states repeat from run to run."
    import random
    import numpy as np
    for name in ("a", "b"):
        random.seed(int.from_bytes(name.encode(), "big")); np.random.seed(len(name) + ord(name))  # different histories
        train_generator(tiny_cfg(tmp_path / name, max_steps=1, ckpt_every=1, sample_every=0), toy_images(16))
    ta, _ = _ckpt_tensors(tmp_path / "a" / "run" / "checkpoint.safetensors", parts=("rng",))
    tb, _ = _ckpt_tensors(tmp_path / "b" / "run" / "checkpoint.safetensors", parts=("rng",))
    assert ta.keys() == tb.keys() and any("numpy" in k for k in ta) and any("python" in k for k in ta)
    assert all(torch.equal(ta[k], tb[k]) for k in ta), [k for k in ta if not torch.equal(ta[k], tb[k])]



DDP_SCRIPT = """
import sys, torch
sys.path.insert(0, {tests!r})
from test_train_generator import ddp_cfg
from sound_video_gen.train.generator import train_generator
torch.set_num_threads(1)
train_generator(ddp_cfg({run!r}), {data!r})
"""


def ddp_cfg(run_dir):
    "Every random draw on (style mixing, DiffAugment, R1 and path length every 2 steps); minibatch-std off (a per-process statistic)."
    return get_config("train-generator-tiny").replace(run_dir=str(run_dir), max_steps=4, ckpt_every=4, sample_every=0, log_every=1,
                                                     batch_size=8, mbstd_group_size=1, style_mixing_prob=0.9, r1_interval=2,
                                                     pl_weight=2.0, pl_interval=2, frames_per_clip=4, progress=False, device="cpu")


def test_two_process_torchrun_matches_one_process(tmp_path):
    import os, subprocess, sys
    from sound_video_gen.data.synthscapes import make_synthscapes
    data = tmp_path / "ss"
    make_synthscapes(data, classes=("rain", "volcano"), n_per_class=2, seconds=1.0, size=16, fps=8, progress=False)
    torch.set_num_threads(1)
    train_generator(ddp_cfg(tmp_path / "one"), data)
    script = tmp_path / "two.py"
    script.write_text(DDP_SCRIPT.format(tests=str(Path(__file__).parent), run=str(tmp_path / "two"), data=str(data)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29523",
                          str(script)], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    a, _ = _ckpt_tensors(tmp_path / "one" / "checkpoint.safetensors")
    b, _ = _ckpt_tensors(tmp_path / "two" / "checkpoint.safetensors")
    assert a.keys() == b.keys()
    # Two processes sum each gradient in another order than one, so values differ in their last bits, and Adam
    # (m / sqrt(v)) turns that into a full-size step difference for any element whose gradient nearly cancels.
    # Per element there is no tight bound; per tensor there is: measured on AVX-512, AVX2 and scalar kernels,
    # |a - b| <= 3.3e-6 |a| (Frobenius) for every weight, buffer and optimizer moment after 4 steps. 1e-4 leaves
    # 30x. A wrong reduction (a rank that steps on its own half-batch, a sum for a mean in a non-Adam state, other
    # rows) moves weights by O(lr) = 2.5e-3 per element, about 1e-3 of the norm.
    for k in a:
        if a[k].is_floating_point() and a[k].numel():
            diff, ref = float((b[k].double() - a[k].double()).norm()), float(a[k].double().norm())
            assert diff <= 1e-4 * ref + 1e-12, (k, diff, ref)
    assert any("w_avg" in k for k in a)      # G's running mean of w is compared too
    la = [json.loads(l) for l in (tmp_path / "one" / "log.jsonl").read_text().splitlines()]
    lb = [json.loads(l) for l in (tmp_path / "two" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lb] == [1, 2, 3, 4]
    for ra, rb in zip(la, lb):   # the log reports the global batch's means
        for k in ("loss_G", "loss_D", "loss_r1", "loss_pl", "pl_mean", "D_real", "D_fake"):
            if k in ra: assert rb[k] == pytest.approx(ra[k], rel=1e-4, abs=1e-5), (ra["step"], k)
    assert sum("loss_pl" in r for r in la) == 2 and sum("loss_r1" in r for r in la) == 2


@pytest.mark.slow
def test_tiny_generator_fd_halves(tmp_path):
    cfg = tiny_cfg(tmp_path, max_steps=300, eval_every=25, ckpt_every=0, sample_every=0, log_every=25, fd_items=256,
                   batch_size=16, r1_gamma=0.1, augment="", ema_kimg=0.5)
    train_generator(cfg, toy_images(512), detector=pool_detector)
    fd = [r["fd_pool"] for r in map(json.loads, (tmp_path / "run" / "log.jsonl").read_text().splitlines()) if "fd_pool" in r]
    assert min(fd[-3:]) < fd[0] / 2, fd


# ---------------------------------------------------------------- CLI

def test_cli_bad_input_exits_2(tmp_path, capsys):
    from sound_video_gen.cli import main
    for argv in (["train-generator", str(tmp_path / "missing"), "--run-dir", str(tmp_path / "r")],
                 ["train-generator", str(tmp_path), "--run-dir", str(tmp_path / "r"), "--config", "train-generator-tiny", "--set", "G_lr=-1"],
                 ["train-generator", str(tmp_path), "--run-dir", str(tmp_path / "r"), "--generator", "no-such-generator"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and err.strip()
    assert not (tmp_path / "r").exists()
