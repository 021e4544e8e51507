"A tiny audio-visual dataset for the CLIP-stage tests: each class has its own colour, mel band and caption word."
import torch

class ToyAV(torch.utils.data.Dataset):
    "Items shaped like `AVClipDataset`'s: frames (T, 3, S, S) in [-1, 1], audio (T, 1, n_mels, width), caption, label."
    classes = ["rain", "thunderstorm", "wind", "fire_crackling"]

    def __init__(self, n: int = 32, n_mels: int = 32, width: int = 16, size: int = 32, T: int = 3, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.items = []
        band = n_mels // len(self.classes)
        for i in range(n):
            c = i % len(self.classes)
            mel = torch.rand(T, 1, n_mels, width, generator=g) * 0.3
            mel[:, :, c * band:(c + 1) * band] += 0.6
            frames = torch.rand(T, 3, size, size, generator=g) * 0.4 - 1
            frames[:, c % 3] += 1.2
            if c == 3: frames[..., : size // 2, :] += 0.5
            self.items.append({"frames": frames.clamp(-1, 1), "audio": mel.clamp(0, 1), "label": c,
                               "caption": f"{self.classes[c].replace('_', ' ')} in scene {i % 5} at dusk"})

    def __len__(self): return len(self.items)
    def __getitem__(self, i): return self.items[i]
