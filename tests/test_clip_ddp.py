"""Two-process torchrun (gloo, CPU) training of both CLIP stages: identical parameters on both ranks, and the same
parameters as one process with the same global batch."""
import json, os, signal, socket, subprocess, sys
from pathlib import Path
import torch
import pytest

from clip_toy import ToyAV
from ddp_clip_worker import audio_kwargs, clip_kwargs
from sound_video_gen.core import load_checkpoint
from sound_video_gen.train.clip import AudioClipTrainConfig, ClipTrainConfig, train_audio_clip, train_clip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_processes_match_one(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    env = dict(os.environ, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="", HF_HUB_OFFLINE="1")
    cmd = [str(torchrun), "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
           str(Path(__file__).with_name("ddp_clip_worker.py")), str(tmp_path / "ddp")]
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = p.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)   # torchrun and both workers
        out, _ = p.communicate()
        pytest.fail(f"torchrun timed out: {out[-3000:]}")
    assert p.returncode == 0, out[-3000:]
    ranks = {k: [load_checkpoint(tmp_path / "ddp" / f"{k}_rank{r}.safetensors")[0] for r in range(2)] for k in ("clip", "audio")}
    for k, (r0, r1) in ranks.items():
        for name in r0: assert torch.equal(r0[name], r1[name]), f"{k}.{name} differs between ranks"

    torch.set_num_threads(1)
    ds = ToyAV(16)
    one_clip = train_clip(ClipTrainConfig(**clip_kwargs(tmp_path / "one" / "clip")), ds)
    one_audio = train_audio_clip(AudioClipTrainConfig(**audio_kwargs(tmp_path / "one" / "audio")), ds, clip=one_clip.model)
    singles = {"clip": one_clip.model.model.state_dict(), "audio": one_audio.model.state_dict()}
    for k, single in singles.items():
        for name, t in single.items():
            if not t.is_floating_point(): continue
            torch.testing.assert_close(ranks[k][0][name], t, rtol=1e-4, atol=2e-5, msg=f"{k}.{name}")
    logs = (tmp_path / "ddp" / "audio" / "log.jsonl").read_text().splitlines()
    one_logs = (tmp_path / "one" / "audio" / "log.jsonl").read_text().splitlines()
    for a, b in zip(logs, one_logs):
        assert json.loads(a)["loss"] == pytest.approx(json.loads(b)["loss"], rel=1e-4)
    assert len(logs) == 3
