"""Teacher trajectories for stage 3: every training clip inverted frame by frame into W+, cached, and served as clips.

The anchored path (`model.anchored`) learns the latent path that the real clips themselves take. `build_teachers`
inverts every frame of every clip of a split with the image encoder (optionally refined by the projector) and caches
the result as one safetensors file under `<dataset>/.teacher_cache/`, keyed by the sha256 of the dataset's
`metadata.csv`, of the encoder file and of the settings: a second run, or another training run on the same data and
encoder, reads it back. The work is done in parts of `part_clips` clips, each written atomically, so a killed build
resumes where it stopped. `TeacherClips` serves the split as training items (frames, windows, the teacher's latents,
the motion driver, the class) with a random start drawn from each item's seed, and a start at frame 0 with
probability `p_first`: SynthScapes-Bench scores segments that start at 0, 16, 32 and 48.
"""
from __future__ import annotations
import fcntl
import hashlib
import json
import math
import shutil
from pathlib import Path

import torch

from sound_video_gen.core import UserError, atomic_path
from sound_video_gen.core import file_sha256

__all__ = ["teacher_key", "build_teachers", "load_teachers", "TeacherClips"]

CACHE = ".teacher_cache"


def teacher_key(root: str | Path, encoder: str | Path, split: str = "train", refine_steps: int = 0, n_frames: int = 64) -> str:
    "The cache key: sha256 of the dataset's metadata.csv, of the encoder file and of the settings."
    root, encoder = Path(root), Path(encoder)
    meta = root / "metadata.csv"
    if not meta.is_file(): raise UserError(f"{root} has no metadata.csv; teacher trajectories need a dataset folder made by 'synthscapes' or 'data'.")
    if not encoder.is_file(): raise UserError(f"image encoder {encoder} does not exist.")
    h = hashlib.sha256()
    for part in (file_sha256(meta), file_sha256(encoder), json.dumps({"split": split, "refine_steps": refine_steps, "n_frames": n_frames, "v": 1})):
        h.update(part.encode())
    return h.hexdigest()[:16]


@torch.no_grad()
def _invert_part(frames_u8: torch.Tensor, enc, G, refine_steps: int, batch: int) -> torch.Tensor:
    "W+ latents (N, T, num_ws, w_dim) float16 of uint8 frames (N, T, 3, H, W)."
    N, T = frames_u8.shape[:2]
    flat = frames_u8.flatten(0, 1)
    out = []
    for i in range(0, len(flat), batch):
        x = flat[i:i + batch].float() / 127.5 - 1
        w = enc(x).float()
        if refine_steps > 0:
            from sound_video_gen.model.inversion import project
            with torch.enable_grad(): w = project(G, x, steps=refine_steps, init=w).detach()
        out.append(w.half())
    return torch.cat(out).view(N, T, *out[0].shape[1:])


def build_teachers(root: str | Path,                 # the dataset folder (SynthScapes or any clip folder with metadata.csv)
                   encoder: str | Path,              # image_encoder.safetensors (train-inverter, or a bundle's)
                   split: str = "train",
                   G=None,                           # the generator; needed only with refine_steps > 0
                   refine_steps: int = 0,            # projector steps per frame after the encoder (0: the encoder alone)
                   n_frames: int = 64,               # frames per clip (from frame 0)
                   part_clips: int = 32,             # clips per resumable part
                   batch: int = 256,                 # frames per encoder call
                   progress: bool = True) -> Path:
    "Invert every clip of `split` frame by frame into W+ and cache it; returns the cache file (reused when present)."
    from safetensors.torch import load_file, save_file
    from sound_video_gen.metrics.bench import load_split
    from sound_video_gen.model.inversion import load_image_encoder
    root = Path(root)
    key = teacher_key(root, encoder, split, refine_steps, n_frames)
    out = root / CACHE / f"{split}-{key}.safetensors"
    if out.is_file(): return out
    if refine_steps > 0 and G is None: raise UserError("refine_steps > 0 needs the generator (G=...).")
    data = load_split(root, split, n_frames=n_frames, segments=1, audio=True, progress=progress)
    enc = load_image_encoder(encoder)
    if G is not None and (G.num_ws, G.w_dim) != (enc.cfg.num_ws, enc.cfg.w_dim):
        raise UserError(f"the image encoder is for a {enc.cfg.num_ws} x {enc.cfg.w_dim} W+, the generator's is {G.num_ws} x {G.w_dim}.")
    (root / CACHE).mkdir(parents=True, exist_ok=True)
    with open(root / CACHE / f"{split}-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)     # runs that start together: the first builds, the others wait and reuse it
        if out.is_file(): return out
        parts = root / CACHE / f"{split}-{key}.parts"
        parts.mkdir(parents=True, exist_ok=True)
        N = len(data["labels"])
        n_parts = math.ceil(N / part_clips)
        it = range(n_parts)
        if progress:
            from tqdm.auto import tqdm
            it = tqdm(it, desc=f"teachers ({split})", unit="part")
        for k in it:
            f = parts / f"part-{k:05d}.safetensors"
            if f.is_file(): continue                                            # done by an earlier, interrupted build
            ws = _invert_part(data["frames"][k * part_clips:(k + 1) * part_clips], enc, G, refine_steps, batch)
            with atomic_path(f) as tmp: save_file({"ws": ws}, str(tmp))
        ws = torch.cat([load_file(str(parts / f"part-{k:05d}.safetensors"))["ws"] for k in range(n_parts)])
        meta = {"split": split, "refine_steps": str(refine_steps), "encoder_sha256": file_sha256(Path(encoder)),
                "dataset_metadata_sha256": file_sha256(root / "metadata.csv"), "classes": json.dumps(data["classes"])}
        with atomic_path(out) as tmp: save_file({"ws": ws, "labels": data["labels"]}, str(tmp), metadata=meta)
        shutil.rmtree(parts, ignore_errors=True)
        return out


def load_teachers(path: str | Path) -> dict:
    "A teacher cache: ws (N, T, num_ws, w_dim) float16, labels (N,), and its metadata."
    from safetensors import safe_open
    from safetensors.torch import load_file
    with safe_open(str(path), "pt") as f: meta = f.metadata()
    return {**load_file(str(path)), "meta": meta}


class TeacherClips(torch.utils.data.Dataset):
    "Clips of one split with their teacher trajectories: `ds[(i, seed)]` cuts `n_frames` from a start drawn from `seed`."
    accepts_item_seeds = True

    def __init__(self, root: str | Path, teachers: str | Path, split: str = "train", n_frames: int = 16,
                 p_first: float = 0.25):
        from sound_video_gen.metrics.bench import load_split
        t = load_teachers(teachers)
        clip_frames = t["ws"].shape[1]
        self.data = load_split(root, split, n_frames=clip_frames, segments=1, audio=True)
        if t["ws"].shape[:2] != self.data["frames"].shape[:2] or not torch.equal(t["labels"], self.data["labels"]):
            raise UserError(f"the teacher cache {teachers} does not match the {split} split of {root}; rebuild it.")
        if not 2 <= n_frames <= clip_frames: raise UserError(f"n_frames must be in [2, {clip_frames}], got {n_frames}.")
        if not 0 <= p_first <= 1: raise UserError(f"p_first must be in [0, 1], got {p_first}.")
        self.ws, self.classes = t["ws"], self.data["classes"]
        self.n_frames, self.p_first = n_frames, p_first

    def __len__(self): return len(self.data["labels"])

    def __getitem__(self, i):
        i, seed = i if isinstance(i, tuple) else (i, None)
        T = self.data["frames"].shape[1]
        s = 0
        if seed is not None:
            g = torch.Generator().manual_seed(int(seed))
            if float(torch.rand((), generator=g)) >= self.p_first: s = int(torch.randint(0, T - self.n_frames + 1, (), generator=g))
        sl = slice(s, s + self.n_frames)
        label = int(self.data["labels"][i])
        return {"frames": self.data["frames"][i, sl].float() / 127.5 - 1, "audio": self.data["windows"][i, sl].float(),
                "teacher": self.ws[i, sl].float(), "motion": self.data["motion"][i, sl], "label": label,
                "class": self.classes[label], "caption": "", "index": i, "start": s}
