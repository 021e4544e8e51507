"""Teacher trajectories (`train.teacher`) and stage 3 on the sound-anchored path: the cache is the encoder's own
inversion, keyed by what made it, resumable; items cut teacher and sound at the same frames; training skips G on
steps without pixel terms and resumes bit for bit."""
import json

import pytest
import torch

from sound_video_gen.core import UserError, get_config
from sound_video_gen.generators.factory import create_generator
from sound_video_gen.model.inversion import ImageEncoder, save_image_encoder
from sound_video_gen.metrics.bench import load_split
from sound_video_gen.train.teacher import TeacherClips, build_teachers, load_teachers, teacher_key
from sound_video_gen.train.ssvg import SSVGTrainConfig, train_ssvg


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from sound_video_gen.data.synthscapes import make_synthscapes
    d = tmp_path_factory.mktemp("teach")
    make_synthscapes(d / "data", classes=["rain", "wind"], n_per_class=3, seconds=1.0, size=32, splits=(0.67, 0.0, 0.33),
                     progress=False)
    G = create_generator("stylegan2-tiny", seed=0).eval().requires_grad_(False)
    torch.manual_seed(0)
    enc = ImageEncoder.for_generator(G, widths=(8, 8, 16, 16), units=(1, 1, 1, 1), head_width=8).eval()
    save_image_encoder(d / "enc.safetensors", enc)
    return d / "data", G, enc, d / "enc.safetensors"


def test_the_cache_is_the_encoders_inversion_and_is_reused(setup):
    root, G, enc, enc_file = setup
    path = build_teachers(root, enc_file, "train", n_frames=16, part_clips=2, progress=False)
    t = load_teachers(path)
    data = load_split(root, "train", n_frames=16, segments=1)
    with torch.no_grad(): want = enc(data["frames"].flatten(0, 1).float() / 127.5 - 1).view(*t["ws"].shape)
    torch.testing.assert_close(t["ws"].float(), want, atol=2e-3, rtol=1e-3)        # stored as float16
    assert t["ws"].shape == (len(data["labels"]), 16, G.num_ws, G.w_dim) and torch.equal(t["labels"], data["labels"])
    assert t["meta"]["encoder_sha256"] and t["meta"]["split"] == "train"
    mtime = path.stat().st_mtime_ns
    assert build_teachers(root, enc_file, "train", n_frames=16, progress=False) == path and path.stat().st_mtime_ns == mtime
    assert teacher_key(root, enc_file, "train", 0, 16) != teacher_key(root, enc_file, "test", 0, 16)
    assert teacher_key(root, enc_file, "train", 0, 16) != teacher_key(root, enc_file, "train", 0, 8)


def test_an_interrupted_build_resumes_from_its_parts(setup, tmp_path):
    root, G, enc, enc_file = setup
    other = tmp_path / "enc2.safetensors"
    torch.manual_seed(5)
    save_image_encoder(other, ImageEncoder.for_generator(G, widths=(8, 8, 16, 16), units=(1, 1, 1, 1), head_width=8))
    key = teacher_key(root, other, "train", 0, 16)
    parts = root / ".teacher_cache" / f"train-{key}.parts"
    parts.mkdir(parents=True)
    from safetensors.torch import save_file
    marked = torch.full((2, 16, G.num_ws, G.w_dim), 7.0, dtype=torch.float16)
    save_file({"ws": marked}, str(parts / "part-00000.safetensors"))      # as a killed build leaves it
    path = build_teachers(root, other, "train", n_frames=16, part_clips=2, progress=False)
    ws = load_teachers(path)["ws"]
    assert torch.equal(ws[:2], marked) and not torch.equal(ws[2:], torch.full_like(ws[2:], 7.0))   # part 0 was not redone
    assert not parts.exists()


def test_items_cut_sound_frames_and_teacher_at_the_same_start(setup):
    root, G, enc, enc_file = setup
    path = build_teachers(root, enc_file, "train", n_frames=16, progress=False)
    ds = TeacherClips(root, path, "train", n_frames=4, p_first=0.0)
    data, t = load_split(root, "train", n_frames=16, segments=1), load_teachers(path)
    starts = set()
    for seed in range(20):
        it = ds[(1, seed)]
        s = it["start"]; starts.add(s)
        assert 0 <= s <= 12
        torch.testing.assert_close(it["teacher"], t["ws"][1, s:s + 4].float())
        torch.testing.assert_close(it["audio"], data["windows"][1, s:s + 4].float())
        assert torch.equal(it["frames"], data["frames"][1, s:s + 4].float() / 127.5 - 1)
    assert len(starts) > 3
    assert {TeacherClips(root, path, "train", n_frames=4, p_first=1.0)[(1, s)]["start"] for s in range(10)} == {0}
    with pytest.raises(UserError, match="does not match"): TeacherClips(root, path, "test", n_frames=4)


def _cfg(run, G, **kw):
    m = get_config("ssvg-tiny").for_generator(G).replace(path="anchored", mel="mel-synthscapes")
    base = dict(model=m, generator="stylegan2-tiny", run_dir=str(run), max_steps=4, batch_size=2, ckpt_every=2, log_every=1,
                sample_every=0, progress=False, device="cpu", seed=3, w_clip_audio=0.0, w_clip_text=0.0, w_teacher=1.0,
                w_teacher_motion=1.0, w_sync=0.1, render_every=2,
                discriminator=SSVGTrainConfig().discriminator.replace(channels=8, max_channels=16))
    return SSVGTrainConfig(**{**base, **kw})


def test_anchored_stage3_skips_g_off_render_steps_and_resumes_exactly(setup, tmp_path):
    root, G, enc, enc_file = setup
    ds = TeacherClips(root, build_teachers(root, enc_file, "train", n_frames=16, progress=False), "train", n_frames=4)
    train_ssvg(_cfg(tmp_path / "a", G), ds, G=G)
    log = [json.loads(l) for l in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert [("d_image" in r, "g_video" in r) for r in log] == [(True, True), (False, False)] * 2   # steps 1, 3 render
    assert all(r["teacher_fine"] > 0 and "sync" in r and "teacher_motion" in r for r in log)
    train_ssvg(_cfg(tmp_path / "b", G, max_steps=2), ds, G=G)
    train_ssvg(_cfg(tmp_path / "b", G), ds, G=G)
    from safetensors.torch import load_file
    a, b = load_file(str(tmp_path / "a" / "ssvg.safetensors")), load_file(str(tmp_path / "b" / "ssvg.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(UserError, match="teacher"):
        from sound_video_gen.data.clips import AVClipDataset
        train_ssvg(_cfg(tmp_path / "c", G), AVClipDataset(root, n_frames=4, size=32, split="train", train=True), G=G)


def test_runs_that_start_together_build_the_cache_once(setup, tmp_path):
    import threading
    root, G, enc, enc_file = setup
    other = tmp_path / "enc3.safetensors"
    torch.manual_seed(9)
    save_image_encoder(other, ImageEncoder.for_generator(G, widths=(8, 8, 16, 16), units=(1, 1, 1, 1), head_width=8))
    got, errors = [], []
    def build():
        try: got.append(build_teachers(root, other, "train", n_frames=16, part_clips=1, progress=False))
        except Exception as e: errors.append(e)
    threads = [threading.Thread(target=build) for _ in range(3)]
    for t in threads: t.start()
    for t in threads: t.join()
    assert not errors and len(got) == 3 and len(set(got)) == 1 and got[0].is_file()
    assert not (root / ".teacher_cache" / f"train-{teacher_key(root, other, 'train', 0, 16)}.parts").exists()


def test_the_sync_term_moves_the_residual_and_never_the_anchor(setup):
    from sound_video_gen.model.ssvg import SSVG
    from sound_video_gen.train.ssvg import Frozen, generate, model_losses
    root, G, enc, enc_file = setup
    cfg = _cfg("unused", G, w_teacher=0.0, w_teacher_motion=0.0, w_sync=1.0, w_reg=0.0)
    torch.manual_seed(0)
    model = SSVG(cfg.model)
    windows = load_split(root, "train", n_frames=16, segments=1)["windows"][:2, :8].float()
    w0 = G.mapping.w_avg[None, None].expand(2, G.num_ws, -1)
    ws, _, anchors = generate(model, G, windows, w0, None, "all", render_frames=False)
    terms = model_losses(ws, None, windows, Frozen(G, None, None), None, None, None, w0, cfg, None, anchors)
    assert list(terms) == ["sync"]
    terms["sync"].backward()
    enc_grad = sum(float(p.grad.abs().sum()) for p in model.encoder.parameters() if p.grad is not None)
    gru_grad = sum(float(p.grad.abs().sum()) for p in model.recurrent.parameters() if p.grad is not None)
    assert enc_grad == 0 and gru_grad > 0                       # E_a learns the scene (the anchor) from the teacher alone
    model.zero_grad()
    ws, _, anchors = generate(model, G, windows, w0, None, "all", render_frames=False)
    model_losses(ws, None, windows, Frozen(G, None, None), None, None, None, w0, cfg, None, None)["sync"].backward()
    assert sum(float(p.grad.abs().sum()) for p in model.encoder.parameters() if p.grad is not None) > 0   # without anchors it would


def test_the_sync_term_per_group_asks_every_group_to_follow_the_loudness():
    from sound_video_gen.model.losses import loudness_sync_loss
    T, loud = 12, torch.rand(2, 12, generator=torch.Generator().manual_seed(0))
    ws = torch.zeros(2, T, 4, 3)
    ws[:, :, 2:] = torch.cumsum(loud, 1)[..., None, None]      # only the last two layers move, at the loudness's speed
    groups = {"coarse": (0, 1), "mid": (1, 2), "fine": (2, 4)}
    whole, per_group = loudness_sync_loss(ws, loud), loudness_sync_loss(ws, loud, groups)
    assert whole < 1e-4                                         # the speed of all layers follows the loudness ...
    assert abs(float(per_group) - 2 / 3) < 1e-4                 # ... but two of three groups stand still (1 - 0 each)
    ws[:, :, :2] = torch.cumsum(loud, 1)[..., None, None]
    assert loudness_sync_loss(ws, loud, groups) < 1e-4


def test_the_speed_term_asks_for_the_teachers_speed_in_any_direction():
    from sound_video_gen.model.losses import teacher_motion_loss, teacher_speed_loss
    g = torch.Generator().manual_seed(0)
    teacher = torch.randn(2, 10, 4, 6, generator=g)                 # a jittering teacher
    groups = {"coarse": (0, 1), "mid": (1, 2), "fine": (2, 4)}
    still = teacher.mean(1, keepdim=True).expand_as(teacher)
    assert abs(float(teacher_speed_loss(still, teacher, groups)) - 1) < 1e-5   # standing still: the whole teacher speed is missed
    mirrored = -teacher                                             # same speed at every frame, every step the other way
    assert float(teacher_speed_loss(mirrored, teacher, groups)) < 1e-8
    assert teacher_motion_loss(mirrored, teacher) > teacher_motion_loss(still, teacher)   # which the step term punishes most
    twice = teacher * 2
    assert abs(float(teacher_speed_loss(twice, teacher, groups)) - 1) < 1e-5


def test_the_motion_size_term_asks_for_the_teachers_amount_of_motion_not_its_timing():
    from sound_video_gen.model.losses import motion_size_loss, teacher_speed_loss
    g = torch.Generator().manual_seed(0)
    teacher = torch.randn(2, 10, 4, 6, generator=g).cumsum(1)       # a wandering teacher
    groups = {"coarse": (0, 1), "mid": (1, 2), "fine": (2, 4)}
    still = teacher[:, :1].expand_as(teacher)
    assert abs(float(motion_size_loss(still, teacher, groups)) - 1) < 1e-5      # standing still misses all of it
    assert abs(float(motion_size_loss(teacher * 2, teacher, groups)) - 1) < 1e-5  # twice as much motion: as far off
    backwards = teacher.flip(1)                                       # the same steps in another order
    assert float(motion_size_loss(backwards, teacher, groups)) < 1e-8
    assert float(teacher_speed_loss(backwards, teacher, groups)) > 0.05        # which the frame-by-frame term punishes
    moving = still.clone().requires_grad_()                          # from standing still, the gradient sets it moving
    motion_size_loss(moving + 1e-3 * torch.randn(moving.shape, generator=g), teacher, groups).backward()
    assert moving.grad.abs().sum() > 0
    jittery = teacher + 0.5 * torch.randn(teacher.shape, generator=g)   # the teacher's path plus frame-to-frame jitter
    raw, averaged = float(motion_size_loss(jittery, teacher, groups)), float(motion_size_loss(jittery, teacher, groups, frames=5))
    assert averaged < 0.25 * raw                                     # over 5-frame means the jitter hardly counts
    with pytest.raises(UserError, match="motion_size_frames"): SSVGTrainConfig(motion_size_frames=0)
