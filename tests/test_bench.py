"SynthScapes-Bench: classifier, exact resume, scores on controls, end-to-end on a tiny SynthScapes folder, CLI."
import json
import subprocess
import sys

import pytest
import torch

from sound_video_gen.core import UserError, save_checkpoint
from sound_video_gen.metrics.bench import (SSClassifier, SSClassifierConfig, bench_scores, benchmark, load_classifier, load_split,
                                   results_table, sync_score, train_classifier)
from sound_video_gen.cli import dispatch


def toy(n, T=12, seed=0):
    "Three classes: dark, bright, alternating dark/bright frames; the motion driver is the true flicker."
    g = torch.Generator().manual_seed(seed)
    lab = torch.arange(n) % 3
    base = torch.where(lab == 0, 40.0, 200.0).view(n, 1, 1, 1, 1).expand(n, T, 1, 1, 1)
    flick = torch.tensor([30.0, 220.0]).repeat(T // 2).view(1, T, 1, 1, 1)
    x = torch.where((lab == 2).view(n, 1, 1, 1, 1), flick, base) + torch.rand(n, T, 3, 16, 16, generator=g) * 30
    return {"frames": x.clamp(0, 255).to(torch.uint8), "labels": lab, "motion": torch.rand(n, T, generator=g)}


CFG = SSClassifierConfig(n_classes=3, classes=("dark", "bright", "flicker"), size=16, n_frames=8, width=8, feat_dim=16,
                         batch_size=8, max_steps=40, ckpt_every=20, log_every=20, lr=5e-3)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("clf")
    return load_classifier(train_classifier(toy(48), d, CFG, progress=False)), d


def test_classifier_shapes_and_bad_input():
    m = SSClassifier(SSClassifierConfig(n_classes=4)).eval()
    x = torch.randint(0, 256, (2, 16, 3, 48, 40), dtype=torch.uint8)
    assert m(x).shape == (2, 4) and m.features(x).shape == (2, 64)
    with pytest.raises(UserError, match="uint8"): m(x.float())
    with pytest.raises(UserError, match="B, T, 3"): m(x[:, :, :2])


def test_training_learns_logs_and_resumes_exactly(trained, tmp_path):
    det, d = trained
    data = toy(30, seed=1)
    acc = (det.probs(data["frames"][:, :8]).argmax(1) == data["labels"]).double().mean()
    assert acc > 0.9
    assert [json.loads(l)["step"] for l in (d / "log.jsonl").read_text().splitlines()] == [20, 40]
    assert json.loads((d / "classifier.json").read_text())["classes"] == ["dark", "bright", "flicker"]
    train_classifier(toy(48), tmp_path, CFG.replace(max_steps=20), progress=False)
    train_classifier(toy(48), tmp_path, CFG, progress=False)  # resume from step 20
    resumed = load_classifier(tmp_path / "classifier.safetensors").model.state_dict()
    for k, v in det.model.state_dict().items(): assert torch.equal(resumed[k], v), k
    with pytest.raises(UserError, match="different config"): train_classifier(toy(48), tmp_path, CFG.replace(lr=1e-3), progress=False)


def test_bad_training_data_and_wrong_checkpoint(tmp_path):
    with pytest.raises(UserError, match="n_classes"): train_classifier(toy(6), tmp_path, CFG.replace(n_classes=2), progress=False)
    with pytest.raises(UserError, match="need 8"): train_classifier({**toy(6, T=4)}, tmp_path, CFG, progress=False)
    p = save_checkpoint(tmp_path / "other.safetensors", {"w": torch.zeros(1)}, {"config_class": "x.OtherConfig"})
    with pytest.raises(UserError, match="not a SynthScapes-Bench classifier"): load_classifier(p)


def test_scores_separate_real_from_controls(trained):
    det, _ = trained
    data, ref = toy(36, seed=2), toy(36, seed=3)
    for k in ("frames", "motion"): data[k] = data[k][:, :8]
    ref["frames"] = ref["frames"][:, :8]
    real = bench_scores(data["frames"], data, ref, det, num_splits=3)
    noise = bench_scores(torch.randint(0, 256, data["frames"].shape, dtype=torch.uint8), data, ref, det, num_splits=3)
    wrong = bench_scores(data["frames"].roll(1, 0), data, ref, det, num_splits=3)  # right videos, wrong sounds
    assert real["consistency"] > 0.9 and wrong["consistency"] < 0.2
    assert real["fvd_ss"] < 0.2 * noise["fvd_ss"]
    assert real["num_ref"] == 36 and real["fvd_metric"] == "fvd36_8f" and real["chance"] == pytest.approx(1 / 3)
    order = data["labels"].argsort(stable=True)  # clips ordered by class, as a split is: IS must not depend on it
    srt = {k: v[order] for k, v in data.items()}
    assert bench_scores(srt["frames"], srt, ref, det, num_splits=3)["is_ss"] == pytest.approx(real["is_ss"], rel=0.15)
    assert real["is_ss"] > 1.5
    table = results_table([{"method": "x", "split": "test", "results": real}])
    assert f"| x | — | test | {real['fvd_ss']:.2f} |" in table and f"{100 * real['consistency']:.1f}%" in table


def test_sync_score():
    T = 10
    d = torch.rand(3, T, generator=torch.Generator().manual_seed(0))
    # a video whose frame-to-frame change equals the driver: brightness is the running sum of the driver
    level = torch.cumsum(d, 1) / d.sum(1, keepdim=True) * 200
    v = level.view(3, T, 1, 1, 1).expand(3, T, 3, 4, 4).to(torch.uint8)
    s, n = sync_score(v, d)
    assert s > 0.95 and n == 3
    still = torch.zeros(3, T, 3, 4, 4, dtype=torch.uint8)
    assert sync_score(still, d) == (0.0, 3)
    assert sync_score(still, torch.ones(3, T))[1] == 0  # constant drivers are skipped


@pytest.fixture(scope="module")
def tiny_synthscapes(tmp_path_factory):
    from sound_video_gen.data import synthscapes as ss
    root = tmp_path_factory.mktemp("ss") / "data"
    ss.make_synthscapes(root, classes=("rain", "thunderstorm", "wind"), n_per_class=5, seconds=1.0, size=32,
                        splits=(0.6, 0.2, 0.2), progress=False)
    return root


def test_benchmark_end_to_end(tiny_synthscapes, tmp_path):
    d = load_split(tiny_synthscapes, "test", n_frames=8, segments=2, size=32)
    assert d["frames"].shape == (6, 8, 3, 32, 32) and d["frames"].dtype == torch.uint8
    assert d["windows"].shape[:3] == (6, 8, 1) and d["classes"] == ["rain", "thunderstorm", "wind"]
    assert torch.isfinite(d["motion"]).all()
    again = load_split(tiny_synthscapes, "test", n_frames=8, segments=2, size=32)  # from the cache
    assert torch.equal(again["frames"], d["frames"])
    cfg = CFG.replace(classes=("rain", "thunderstorm", "wind"), max_steps=4)
    clf = train_classifier(tiny_synthscapes, tmp_path / "clf", cfg, progress=False)
    log = tmp_path / "results.jsonl"
    r = benchmark("real-clips", "test", tiny_synthscapes, clf, n_frames=8, segments=2, log=log)
    s = r["results"]
    assert s["num_fake"] == 6 and s["num_ref"] == 6 and s["sync"] > 0.3
    assert r["classifier"]["sha256"] and r["ref_split"] == "val" and r["method"] == "real-clips"
    # CLI: the table of the log, and bad input as one sentence with exit code 2
    out = subprocess.run([sys.executable, "-m", "sound_video_gen.cli", "bench", "table", str(log)], capture_output=True, text=True)
    assert out.returncode == 0 and "real-clips" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "sound_video_gen.cli", "bench", "run", str(tmp_path / "nope"), "--classifier",
                          str(clf), "--method", "real-clips"], capture_output=True, text=True)
    assert bad.returncode == 2 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr
    with pytest.raises(UserError, match="needs a generator"):
        benchmark("audio-reactive-walk", "test", tiny_synthscapes, clf, n_frames=8, segments=2)
    with pytest.raises(UserError, match="'test' or 'val'"):
        benchmark("real-clips", "train", tiny_synthscapes, clf, n_frames=8, segments=2)


def test_cli_help_and_errors(capsys):
    assert dispatch(["bench"]) == 0 and "train" in capsys.readouterr().out
    with pytest.raises(UserError, match="unknown bench command"): dispatch(["bench", "fit"])
    with pytest.raises(UserError, match="required"): dispatch(["bench", "run", "x"])
