"Run under `torchrun --nproc_per_node 2`: train both CLIP stages a few steps, save each rank's parameters."
import sys
from pathlib import Path
import torch
sys.path.insert(0, str(Path(__file__).parent))
from clip_toy import ToyAV
from sound_video_gen.core import save_checkpoint
from sound_video_gen.train.clip import ClipTrainConfig, AudioClipTrainConfig, train_clip, train_audio_clip
from sound_video_gen.core import get_config
import torch.distributed as dist

def main(out: str):
    torch.set_num_threads(1)
    out = Path(out)
    rank = int(__import__("os").environ["RANK"])
    ds = ToyAV(16)
    dist.init_process_group("gloo")   # one group for both stages (the stages join it and leave it open)
    r1 = train_clip(ClipTrainConfig(**clip_kwargs(out / "clip")), ds)
    save_checkpoint(out / f"clip_rank{rank}.safetensors", r1.model.model.state_dict())
    r2 = train_audio_clip(AudioClipTrainConfig(**audio_kwargs(out / "audio")), ds, clip=r1.model)
    save_checkpoint(out / f"audio_rank{rank}.safetensors", r2.model.state_dict())
    dist.barrier()
    dist.destroy_process_group()

def clip_kwargs(run_dir):
    return dict(model="clip-tiny", run_dir=str(run_dir), max_steps=3, batch_size=8, lr=1e-3, warmup_steps=0,
                device="cpu", progress=False, class_prompt_p=0.5, text_aug_p=0.5, log_every=1, ckpt_every=2)

def audio_kwargs(run_dir):
    return dict(encoder=get_config("audio-encoder-tiny"), clip="unused", clip_pretrained=None, run_dir=str(run_dir),
                max_steps=3, batch_size=8, lr=1e-3, warmup_steps=0, device="cpu", progress=False, text_aug_p=0.5,
                log_every=1, ckpt_every=2)

if __name__ == "__main__":
    main(sys.argv[1])
