"Training stages 1-2 (train_clip, train_audio_clip): exact resume, logs, data order, bad input; tiny configs."
import json, math
import pytest
import torch

from clip_toy import ToyAV
from sound_video_gen.core import UserError, get_config, load_checkpoint
from sound_video_gen.multimodal.clip import load_clip
from sound_video_gen.train.common import StepBatchSampler, item_generators, lr_at, rng_state, set_rng_state, MemoryDataset
from sound_video_gen.train.clip import (AudioClipTrainConfig, ClipTrainConfig, augment_text, collate,
                                               pick_pairs, train_audio_clip, train_clip)

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def ds():
    return ToyAV(24)


@pytest.fixture(scope="module")
def frozen_clip():
    torch.manual_seed(0)
    return load_clip("clip-tiny").freeze()


def audio_cfg(run_dir, **kw):
    base = dict(encoder=get_config("audio-encoder-tiny"), clip="clip-tiny", clip_pretrained=None, run_dir=str(run_dir),
                max_steps=8, batch_size=8, lr=2e-3, warmup_steps=2, ckpt_every=3, log_every=1, device="cpu",
                progress=False, text_aug_p=0.5)
    base.update(kw)
    return AudioClipTrainConfig(**base)


def clip_cfg(run_dir, **kw):
    base = dict(model="clip-tiny", run_dir=str(run_dir), max_steps=6, batch_size=8, lr=2e-3, warmup_steps=2,
                ckpt_every=2, log_every=1, device="cpu", progress=False, class_prompt_p=0.3, text_aug_p=0.3)
    base.update(kw)
    return ClipTrainConfig(**base)


def ckpt_tensors(run_dir):
    state, _, meta = load_checkpoint(run_dir / "checkpoint.safetensors")
    return state, meta


def assert_same_state(a, b):
    "Bit-identical nested states (modules, optimizers, RNG)."
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a: assert_same_state(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b): assert_same_state(x, y)
    else:
        assert a == b or (isinstance(a, float) and math.isclose(a, b, rel_tol=0, abs_tol=0))


def test_audio_clip_resume_by_max_steps_is_exact(tmp_path, ds, frozen_clip):
    full = train_audio_clip(audio_cfg(tmp_path / "full"), ds, clip=frozen_clip)
    part = audio_cfg(tmp_path / "part", max_steps=5)
    train_audio_clip(part, ds, clip=frozen_clip)
    resumed = train_audio_clip(audio_cfg(tmp_path / "part"), ds, clip=frozen_clip)   # same run, later max_steps
    a, ma = ckpt_tensors(tmp_path / "full")
    b, mb = ckpt_tensors(tmp_path / "part")
    assert ma["step"] == mb["step"] == 8
    assert_same_state(a["modules"], b["modules"])
    assert_same_state(a["optimizers"], b["optimizers"])
    for p, q in zip(full.model.state_dict().values(), resumed.model.state_dict().values()): assert torch.equal(p, q)
    logs = [json.loads(l) for l in (tmp_path / "part" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logs] == list(range(1, 9))
    full_logs = [json.loads(l) for l in (tmp_path / "full" / "log.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in logs] == [r["loss"] for r in full_logs]


class Killed(RuntimeError): pass


def test_audio_clip_resume_after_crash_is_exact(tmp_path, ds, frozen_clip):
    train_audio_clip(audio_cfg(tmp_path / "full"), ds, clip=frozen_clip)
    def kill(step, rec):
        if step == 7: raise Killed("simulated kill after the step-6 checkpoint")
    with pytest.raises(Killed):
        train_audio_clip(audio_cfg(tmp_path / "crash"), ds, clip=frozen_clip, on_step=kill)
    _, meta = ckpt_tensors(tmp_path / "crash")
    assert meta["step"] == 6
    train_audio_clip(audio_cfg(tmp_path / "crash"), ds, clip=frozen_clip)
    a, _ = ckpt_tensors(tmp_path / "full")
    b, _ = ckpt_tensors(tmp_path / "crash")
    assert_same_state(a["modules"], b["modules"])
    assert_same_state(a["optimizers"], b["optimizers"])
    steps = [json.loads(l)["step"] for l in (tmp_path / "crash" / "log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 9))   # the step-7 record written before the crash was dropped on resume


def test_clip_resume_after_crash_is_exact(tmp_path, ds):
    train_clip(clip_cfg(tmp_path / "full"), ds)
    def kill(step, rec):
        if step == 3: raise Killed()
    with pytest.raises(Killed):
        train_clip(clip_cfg(tmp_path / "crash"), ds, on_step=kill)
    train_clip(clip_cfg(tmp_path / "crash", max_steps=4), ds)
    train_clip(clip_cfg(tmp_path / "crash"), ds)
    a, _ = ckpt_tensors(tmp_path / "full")
    b, _ = ckpt_tensors(tmp_path / "crash")
    assert_same_state(a["modules"], b["modules"])
    assert_same_state(a["optimizers"], b["optimizers"])
    clip = load_clip(str(tmp_path / "crash" / "clip.safetensors"))
    assert clip.embed_dim == 32


def test_training_changes_weights_and_learns_temperature(tmp_path, ds, frozen_clip):
    res = train_audio_clip(audio_cfg(tmp_path / "r", max_steps=3), ds, clip=frozen_clip)
    state, _ = ckpt_tensors(tmp_path / "r")
    scale = state["modules"]["audio"]["log_scale"].exp()
    assert abs(float(scale) - 1 / 0.07) < 0.5 and float(scale) != pytest.approx(1 / 0.07, abs=1e-7)
    first = json.loads((tmp_path / "r" / "log.jsonl").read_text().splitlines()[0])
    assert {"loss", "loss_text", "loss_image", "loss_self", "scale", "lr"} <= set(first)
    assert first["loss"] == pytest.approx(first["loss_text"] + first["loss_image"] + first["loss_self"], rel=1e-5)
    assert (tmp_path / "r" / "audio_encoder.safetensors").is_file() and (tmp_path / "r" / "config.json").is_file()


def test_existing_run_needs_same_config_or_overwrite(tmp_path, ds, frozen_clip):
    train_audio_clip(audio_cfg(tmp_path / "r", max_steps=2), ds, clip=frozen_clip)
    with pytest.raises(UserError, match="different config"):
        train_audio_clip(audio_cfg(tmp_path / "r", max_steps=3, lr=5e-3), ds, clip=frozen_clip)
    with pytest.raises(UserError, match="already holds a run"):
        train_audio_clip(audio_cfg(tmp_path / "r", max_steps=2), ds, clip=frozen_clip, resume=False)
    train_audio_clip(audio_cfg(tmp_path / "r", max_steps=1, lr=5e-3), ds, clip=frozen_clip, resume=False, overwrite=True)
    assert len((tmp_path / "r" / "log.jsonl").read_text().splitlines()) == 1


def test_bad_inputs(tmp_path, ds, frozen_clip):
    with pytest.raises(UserError, match="embed_dim"):
        train_audio_clip(audio_cfg(tmp_path / "a", encoder=get_config("audio-encoder-tiny", embed_dim=16)), ds, clip=frozen_clip)
    with pytest.raises(UserError, match="no 'spectrogram'"):
        train_audio_clip(audio_cfg(tmp_path / "b", mel_key="spectrogram"), ds, clip=frozen_clip)
    with pytest.raises(UserError, match="divisible"):
        StepBatchSampler(24, 7, 0, 2)
    with pytest.raises(UserError, match="fewer than one batch"):
        train_clip(clip_cfg(tmp_path / "d", batch_size=32), ds)
    with pytest.raises(UserError, match="batch_size"):
        ClipTrainConfig(batch_size=1)
    with pytest.raises(UserError, match="optimizer"):
        AudioClipTrainConfig(optimizer="adam")
    with pytest.raises(UserError, match="class prompts need"):
        train_clip(clip_cfg(tmp_path / "e", class_prompt_p=1.0), [dict(it, label=0) for it in ds], classnames=None)


def test_config_json_round_trip():
    cfg = audio_cfg("runs/x", encoder=get_config("audio-encoder-cvpr-code"))
    back = AudioClipTrainConfig.from_json(cfg.to_json())
    assert back == cfg and back.encoder.depth == 18
    assert AudioClipTrainConfig().init_temperature == 0.07   # CLIP's 1/0.07 scale, not the release's exp(0.07)


def test_step_sampler_order_is_a_function_of_step():
    full = StepBatchSampler(20, 8, seed=3)
    ranks = [StepBatchSampler(20, 8, r, 2, seed=3) for r in range(2)]
    for step in range(5):   # two batches per epoch, a new permutation per epoch
        assert full.indices(step) == ranks[0].indices(step) + ranks[1].indices(step)
    assert len(set(full.indices(0) + full.indices(1))) == 16
    assert full.indices(2) != full.indices(0)
    it = iter(StepBatchSampler(20, 8, seed=3, start_step=3))
    assert next(it) == full.indices(3)


def test_item_generators_and_pairs():
    batch = collate([ToyAV(4, T=5)[i] for i in range(4)])
    assert batch["frames"].shape == (4, 5, 3, 32, 32) and batch["label"].tolist() == [0, 1, 2, 3]
    g1, g2 = item_generators(0, 7, 2, 2), item_generators(0, 7, 0, 4)[2:]
    p1 = pick_pairs({k: v[2:] for k, v in batch.items()}, "frames", "audio", g1)
    p2 = pick_pairs(batch, "frames", "audio", item_generators(0, 7, 0, 4))
    assert torch.equal(p1["_t"], p2["_t"][2:])      # an item's draw does not depend on which rank holds it
    assert p2["frames"].shape == (4, 3, 32, 32) and p2["audio"].shape == (4, 1, 32, 16)
    t = p2["_t"]
    assert torch.equal(p2["audio"][1], batch["audio"][1, t[1]])
    mid = pick_pairs(batch, "frames", "audio", None)
    assert mid["_t"].tolist() == [2] * 4
    words = "a b c d e".split()
    outs = {augment_text("a b c d e", torch.Generator().manual_seed(s), 1.0) for s in range(20)}
    assert len(outs) > 3 and all(sorted(o.split()) == words or len(o.split()) == 4 for o in outs)


def test_rng_state_round_trip():
    g = torch.Generator().manual_seed(1)
    s = rng_state({"g": g})
    a = (torch.rand(3), torch.rand(2, generator=g), __import__("numpy").random.rand(), __import__("random").random())
    set_rng_state(s, {"g": g})
    b = (torch.rand(3), torch.rand(2, generator=g), __import__("numpy").random.rand(), __import__("random").random())
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and a[2:] == b[2:]


def test_lr_schedule_and_memory_dataset():
    assert lr_at(0, 1.0, 4) == 0.25 and lr_at(10, 1.0, 4) == 1.0
    assert lr_at(4, 1.0, 4, 14) == pytest.approx(1.0) and lr_at(14, 1.0, 4, 14) == pytest.approx(0.0)
    ds = ToyAV(4)
    mem = MemoryDataset(ds, progress=False)
    assert mem.classes == ds.classes and mem.items[0]["frames"].dtype == torch.uint8
    assert (mem[1]["frames"] - ds[1]["frames"]).abs().max() <= 0.5 / 127.5 + 1e-6
    assert torch.equal(mem[1]["audio"], ds[1]["audio"])
