"""The package's central claim on a small scale: trained against teacher trajectories, the sound-anchored model makes
videos that the SynthScapes-Bench classifier reads as the sound's class, clearly more often than the untrained model,
and whose latents move when the sound is loud.

Everything frozen comes from the shipped demo bundle (its 64² generator and image encoder) and the shipped benchmark
classifier; the data is a fresh three-class SynthScapes set, and the videos are scored on its held-out clips."""
import pytest
import torch

from sound_video_gen.core import get_config, seed_everything
from sound_video_gen.generators.factory import load_generator
from sound_video_gen.metrics.bench import load_classifier, load_split, shipped_classifier
from sound_video_gen.model.ssvg import SSVG, render
from sound_video_gen.train.teacher import TeacherClips, build_teachers
from sound_video_gen.train.ssvg import SSVGTrainConfig, train_ssvg

DEMO = __import__("pathlib").Path(__import__("sound_video_gen").__file__).parent / "pretrained" / "demo"
CLASSES = ["thunderstorm", "ocean_waves", "birdsong"]


def _tiny_model_config():
    cfg = get_config("ssvg-anchored-demo")
    return cfg.replace(encoder=cfg.encoder.replace(widths=(8, 16, 32, 32), head_width=16),
                       anchored=cfg.anchored.replace(hidden=32))


@torch.no_grad()
def _loudness_sync(model, G, data) -> float:
    "Mean over held-out segments of corr_t(‖w_t − w_{t−1}‖, loudness_t): does the latent move when the sound is loud?"
    from sound_video_gen.model.anchored import window_loudness
    from sound_video_gen.model.losses import loudness_sync_loss
    model.eval()
    w0 = G.mapping.w_avg[None, None].expand(len(data["labels"]), G.num_ws, -1)
    ws = model.latents(data["windows"].float(), w0, generator=torch.Generator().manual_seed(0))
    return 1 - float(loudness_sync_loss(ws, window_loudness(data["windows"].float(), model.cfg.anchored.loudness)))


@torch.no_grad()
def _true_class_prob(model, G, det, data) -> float:
    "Mean classifier probability of each held-out segment's own class, for videos from its windows."
    model.eval()
    w0 = G.mapping.w_avg[None, None].expand(len(data["labels"]), G.num_ws, -1)
    ws = model.latents(data["windows"].float(), w0, generator=torch.Generator().manual_seed(0))
    frames = render(G, ws).clamp(-1, 1)
    probs = det.probs(((frames + 1) * 127.5).round().to(torch.uint8))
    return float(probs[torch.arange(len(probs)), data["labels"]].mean())


def test_teacher_training_makes_videos_show_their_sound(tmp_path):
    from sound_video_gen.data.synthscapes import make_synthscapes
    root = tmp_path / "data"
    make_synthscapes(root, classes=CLASSES, n_per_class=6, seconds=2.0, size=64, splits=(0.67, 0.0, 0.33), progress=False)
    G = load_generator(DEMO / "generator.safetensors").eval().requires_grad_(False)
    det = load_classifier(shipped_classifier())
    cache = build_teachers(root, DEMO / "image_encoder.safetensors", "train", n_frames=32, progress=False)
    assert build_teachers(root, DEMO / "image_encoder.safetensors", "train", n_frames=32, progress=False) == cache   # reused
    ds = TeacherClips(root, cache, "train", n_frames=8)
    test = load_split(root, "test", n_frames=16, segments=2, cache=False)
    # the classifier knows nine classes; map the three-class labels onto its label order
    test["labels"] = torch.tensor([list(det.model.cfg.classes).index(test["classes"][int(l)]) for l in test["labels"]])

    mcfg = _tiny_model_config()
    seed_everything(0)
    untrained = SSVG(mcfg.for_generator(G))
    before, sync_before = _true_class_prob(untrained, G, det, test), _loudness_sync(untrained, G, test)
    cfg = SSVGTrainConfig(model=mcfg, run_dir=str(tmp_path / "run"), max_steps=160, batch_size=8, render_every=0,
                          w_teacher=1.0, w_teacher_motion=1.0, w_sync=0.2, sync_groups=True, w_clip_audio=0, w_clip_text=0, w_adv_image=0,
                          w_adv_video=0, w_reg=0.01, lr_recurrent=5e-4, lr_encoder=2e-3, ckpt_every=0, log_every=0,
                          sample_every=0, progress=False, amp=False)
    train_ssvg(cfg, ds, G=G)
    from sound_video_gen.model.ssvg import load_ssvg
    trained = load_ssvg(tmp_path / "run" / "ssvg.safetensors")
    after, sync_after = _true_class_prob(trained, G, det, test), _loudness_sync(trained, G, test)
    print(f"class probability {before:.3f} -> {after:.3f}, loudness sync {sync_before:.3f} -> {sync_after:.3f}")
    # measured on one machine: 0.018 untrained; after 160 steps 0.24 to 0.30 (1 and 2 threads) with the earlier
    # whole-speed sync term, 0.25 with the recipe's per-group one. Float rounding differs with threads and CPUs, and so does the path training
    # takes, so the bar is a rise of 0.1 at 160 steps: over five times the untrained probability, half the lowest measured.
    assert after > before + 0.1, (before, after)
    # the sync term (per layer group, on the frame's loudness): measured -0.05 untrained, 0.23 after 160 steps
    assert sync_after > sync_before + 0.1, (sync_before, sync_after)
