"""sound_video_gen: Sound-guided Semantic Video Generation (ECCV 2022), re-implemented.

The names a user types are importable from the top level; each is imported from its module on first use, so
`import sound_video_gen` stays fast. The packages name the concerns (see the README): `generators`, `multimodal`,
`model`, `data`, `metrics`, `train`, `apps`, `cli`.
"""
__version__ = "0.1.0"

import importlib

# name -> module that defines it
_LAZY = {
    "get_config": "core", "list_configs": "core", "seed_everything": "core", "UserError": "core",
    "load_audio": "audio", "load_mel": "audio", "frame_windows": "audio", "MelConfig": "audio",
    "create_generator": "generators.factory", "load_generator": "generators.factory", "save_generator": "generators.factory",
    "load_clip": "multimodal.clip", "load_audio_encoder": "multimodal.audio_encoder",
    "SSVG": "model.ssvg", "load_ssvg": "model.ssvg", "save_ssvg": "model.ssvg", "render": "model.ssvg",
    "make_synthscapes": "data.synthscapes", "AVClipDataset": "data.clips", "write_video": "data.clips",
    "calc_metric": "metrics.distances", "get_method": "metrics.baselines", "benchmark": "metrics.bench",
    "train_clip": "train.clip", "train_audio_clip": "train.clip", "train_ssvg": "train.ssvg",
}
__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name not in _LAZY: raise AttributeError(f"module 'sound_video_gen' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
