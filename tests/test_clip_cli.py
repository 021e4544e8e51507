"""CLIP stages from the outside: the offline fast-fail for pretrained weights, the two commands, and (slow) a short
SynthScapes training that must classify sounds zero-shot far above chance."""
import json, time
import numpy as np
import pytest
import torch

from sound_video_gen.cli import dispatch
from sound_video_gen.core import UserError, run_cli, get_config
from sound_video_gen.multimodal.clip import _cached_weights, load_clip


@pytest.fixture
def no_weight_cache(monkeypatch, tmp_path):
    """A machine without the openai weights, whatever this one has cached: empty Hugging Face and CLIP caches, and a
    socket that fails the test if anything tries the network."""
    import socket
    import huggingface_hub.constants as hfc
    import open_clip
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hfc, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    def no_network(*a, **k): raise AssertionError("the offline path tried the network")
    monkeypatch.setattr(socket.socket, "connect", no_network)
    assert _cached_weights(open_clip.get_pretrained_cfg("ViT-B-32", "openai")) is None


def test_offline_openai_fails_with_instructions_without_the_network(no_weight_cache):
    with pytest.raises(UserError) as e:
        load_clip("ViT-B-32", "openai")
    msg = str(e.value)
    assert "HF_HUB_OFFLINE=1" in msg and "pretrained='/path/to/weights'" in msg and "--clip-pretrained" in msg
    assert "timm/vit_base_patch32_clip_224.openai" in msg


def test_cli_offline_openai_exit_code(tmp_path, capsys, no_weight_cache):
    code = run_cli(dispatch, ["train-audio-clip", str(tmp_path), "--run-dir", str(tmp_path / "r"),
                              "--clip", "ViT-B-32", "--clip-pretrained", "openai", "--encoder", "audio-encoder-tiny"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the ViT-B-32 weights 'openai' are not on this machine") and "Traceback" not in err


@pytest.mark.parametrize("argv, msg", [
    (["train-clip", "/no/such/folder", "--run-dir", "r"], "does not exist"),
    (["train-clip", ".", "--run-dir", "r", "--max-steps", "x"], "expected an integer"),
    (["train-clip", ".", "--run-dir", "r", "--set", "batch_size"], "KEY=VALUE"),
    (["train-clip", ".", "--run-dir", "r", "--set", "bogus=1"], "unknown ClipTrainConfig key"),
    (["train-audio-clip", ".", "--run-dir", "r", "--clip", "clip-tiny", "--clip-pretrained", "none", "--encoder", "mel-tiny"],
     "not an audio encoder config"),
    (["train-audio-clip", ".", "--run-dir", "r", "--clip", "ViT-Q-99", "--clip-pretrained", "none"], "no open_clip architecture"),
])
def test_cli_bad_input(argv, msg, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_cli(dispatch, argv) == 2
    assert msg in capsys.readouterr().err


def test_cli_trains_both_stages_on_a_dataset_folder(tmp_path, capsys):
    from sound_video_gen.data.synthscapes import make_synthscapes
    data = tmp_path / "data"
    make_synthscapes(data, classes=["rain", "thunderstorm"], n_per_class=4, seconds=1.0, size=32, fps=8, progress=False)
    common = ["--frames", "2", "--fps", "2", "--size", "32", "--mel", "mel-tiny", "--batch-size", "4", "--max-steps", "2",
              "--device", "cpu"]
    assert run_cli(dispatch, ["train-clip", str(data), "--run-dir", str(tmp_path / "clip"), "--model", "clip-tiny",
                              "--set", "progress=false", "class_prompt_p=0.5", *common]) == 0
    assert (tmp_path / "clip" / "clip.safetensors").is_file()
    assert run_cli(dispatch, ["train-audio-clip", str(data), "--run-dir", str(tmp_path / "fa"),
                              "--clip", str(tmp_path / "clip" / "clip.safetensors"), "--encoder", "audio-encoder-tiny",
                              "--set", "progress=false", *common]) == 0
    out = capsys.readouterr().out
    metrics = json.loads((tmp_path / "fa" / "metrics.json").read_text())
    assert metrics["n"] == 2 and 0 <= metrics["zero_shot_audio_acc"] <= 1 and metrics["chance_acc"] == 0.5
    assert "zero_shot_audio_acc" in out
    cfg = json.loads((tmp_path / "fa" / "config.json").read_text())
    assert cfg["clip_pretrained"] is None and cfg["encoder"]["depth"] == 10
    # a second call resumes the finished run (nothing to do) instead of starting again
    assert run_cli(dispatch, ["train-audio-clip", str(data), "--run-dir", str(tmp_path / "fa"),
                              "--clip", str(tmp_path / "clip" / "clip.safetensors"), "--encoder", "audio-encoder-tiny",
                              "--set", "progress=false", *common]) == 0
    assert len((tmp_path / "fa" / "log.jsonl").read_text().splitlines()) == 3   # 2 steps + 1 eval record


class SynthSample(torch.utils.data.Dataset):
    "SynthScapes clips generated in memory, shaped like AVClipDataset items (4 frames and their mel windows)."
    def __init__(self, n_per_class, seed, seconds=2.0, size=32, fps=8, n_frames=4):
        from sound_video_gen.audio import frame_windows, log_mel
        from sound_video_gen.data.synthscapes import CLASSES, clip_seed, generate_clip
        mel = get_config("mel-synthscapes")
        self.classes, self.items = list(CLASSES), []
        for c, cls in enumerate(CLASSES):
            for i in range(n_per_class):
                s = generate_clip(cls, clip_seed(seed, cls, i), seconds=seconds, size=size, fps=fps, sr=mel.sample_rate)
                idx = np.linspace(0, len(s.frames) - 1, n_frames).round().astype(int)
                win = frame_windows(log_mel(torch.from_numpy(s.audio), mel), len(s.frames), fps, mel)[idx]
                self.items.append(dict(frames=torch.from_numpy(s.frames[idx]).permute(0, 3, 1, 2).float() / 127.5 - 1,
                                       audio=win, caption=s.caption, label=c))
    def __len__(self): return len(self.items)
    def __getitem__(self, i): return self.items[i]


@pytest.mark.slow
def test_short_synthscapes_training_classifies_sounds_above_chance(tmp_path):
    from sound_video_gen.train.clip import AudioClipTrainConfig, ClipTrainConfig, train_audio_clip, train_clip
    torch.set_num_threads(2)
    train, test = SynthSample(16, 0), SynthSample(4, 1)
    clip = train_clip(ClipTrainConfig(model="clip-tiny", run_dir=str(tmp_path / "clip"), max_steps=250, batch_size=48,
                                      lr=2e-3, warmup_steps=20, class_prompt_p=0.3, device="cpu", progress=False), train).model
    enc = get_config("audio-encoder-tiny", n_mels=64)
    res = train_audio_clip(AudioClipTrainConfig(encoder=enc, clip="clip-tiny", clip_pretrained=None, run_dir=str(tmp_path / "fa"),
                                                max_steps=250, batch_size=48, lr=2e-3, warmup_steps=20, device="cpu",
                                                progress=False), train, eval_dataset=test, clip=clip)
    m = json.loads((tmp_path / "fa" / "metrics.json").read_text())
    assert m["zero_shot_audio_acc"] > 3 * m["chance_acc"], m
    assert m["audio_to_image_R@5"] > 2 * m["chance_R@5"], m
