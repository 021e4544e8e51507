"Test tiers: tests marked slow, cuda or weights run only when named in --flags (like nbdev's tst_flags)."
import os
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
import pytest

TIERS = ("slow", "cuda", "weights", "browser")

def pytest_addoption(parser):
    parser.addoption("--flags", default="", help="space- or comma-separated tiers to run: slow cuda weights browser")

def pytest_collection_modifyitems(config, items):
    flags = set(config.getoption("--flags").replace(",", " ").split())
    for item in items:
        for tier in TIERS:
            if tier in item.keywords and tier not in flags:
                item.add_marker(pytest.mark.skip(reason=f"'{tier}' tier; run with --flags {tier}"))


@pytest.fixture(scope="session")
def tiny_bench(tmp_path_factory):
    """A tiny SynthScapes-Bench setup shared by the bench tests: a 3-class SynthScapes folder of 4-s clips, a 4-step
    classifier and a random bundle (stylegan2-tiny) whose mel fits the data."""
    import torch
    from sound_video_gen.model.bundle import make_bundle
    from sound_video_gen.core import get_config
    from sound_video_gen.data.synthscapes import make_synthscapes
    from sound_video_gen.generators.factory import create_generator
    from sound_video_gen.metrics.bench import SSClassifierConfig, train_classifier
    from sound_video_gen.model.ssvg import SSVG
    d = tmp_path_factory.mktemp("tiny_bench")
    classes = ("rain", "thunderstorm", "wind")
    make_synthscapes(d / "data", classes=classes, n_per_class=5, seconds=4.0, size=32, splits=(0.6, 0.2, 0.2), progress=False)
    cfg = SSClassifierConfig(n_classes=3, classes=classes, size=16, n_frames=8, width=8, feat_dim=16, batch_size=8, max_steps=4)
    clf = train_classifier(d / "data", d / "clf", cfg, progress=False)
    G = create_generator("stylegan2-tiny", seed=0).eval()
    torch.manual_seed(0)
    model = SSVG(get_config("ssvg-tiny").for_generator(G).replace(mel="mel-synthscapes")).eval()
    return {"data": str(d / "data"), "clf": str(clf), "bundle": make_bundle(d / "bundle", G, model), "dir": d}
