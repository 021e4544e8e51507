"Editing success: the masked latents, and the scores on tiny random models."
import pytest
import torch

from sound_video_gen.core import UserError, get_config
from sound_video_gen.generators.factory import create_generator
from sound_video_gen.metrics.bench import ClassifierDetector, SSClassifier, SSClassifierConfig
from sound_video_gen.metrics.editing import edit_success, frame_probs, layout_kept, windows_by_class
from sound_video_gen.model.editing import edited_latents
from sound_video_gen.model.ssvg import SSVG


@pytest.fixture(scope="module")
def tiny():
    G = create_generator("stylegan2-tiny", seed=0).eval().requires_grad_(False)
    torch.manual_seed(0)
    model = SSVG(get_config("ssvg-tiny").for_generator(G).replace(mel="mel-synthscapes")).eval()
    torch.manual_seed(1)
    det = ClassifierDetector(SSClassifier(SSClassifierConfig(n_classes=3, classes=("a", "b", "c"), size=16, n_frames=4, width=8, feat_dim=16)))
    g = torch.Generator().manual_seed(0)
    wins = {c: torch.rand(3, 1, 64, 16, generator=g) for c in ("a", "b", "c")}
    return G, model, det, wins


@pytest.mark.parametrize("groups", [["coarse"], ["mid"], ["fine"], ["coarse", "fine"], "mid"])
def test_groups_leave_other_layers_untouched(tiny, groups):
    _, model, _, _ = tiny
    lg = model.encoder.groups
    w, dw = torch.randn(4, model.cfg.num_ws, model.cfg.w_dim), torch.randn(4, model.cfg.num_ws, model.cfg.w_dim)
    e = edited_latents(w, dw, 2.0, groups, lg)
    names = [groups] if isinstance(groups, str) else groups
    for g, (a, b) in lg.items():
        if g in names: assert torch.allclose(e[:, a:b], w[:, a:b] + 2.0 * dw[:, a:b])
        else: assert torch.equal(e[:, a:b], w[:, a:b]), g
    assert torch.equal(edited_latents(w, dw, 0.0, None, lg), w)
    assert torch.allclose(edited_latents(w, dw, 1.0, None, lg), w + dw)
    assert torch.equal(edited_latents(w, dw, 1.0, ["coarse", "mid", "fine"], lg), w + dw)
    with pytest.raises(UserError, match="groups must name"): edited_latents(w, dw, 1.0, [], lg)
    with pytest.raises(UserError, match="differ in shape"): edited_latents(w, dw[:2], 1.0)


def test_scores_are_fractions_and_alpha_zero_is_no_edit(tiny):
    G, model, det, wins = tiny
    res = edit_success(model, G, det, wins, n_scenes=5, alpha=[0.0, 1.0, 3.0], groups=None, seed=3)
    zero, *rest = res["rows"]
    assert zero["edit_success"] == 0 and zero["delta_p"] == 0 and zero["flip_rate"] == 0 and zero["layout_kept"] == 1
    for r in res["rows"]:
        assert r["n_pairs"] == 5 * 2
        assert all(0 <= r[k] <= 1 for k in ("edit_success", "flip_rate", "layout_kept"))
        assert -1 <= r["delta_p"] <= 1 and all(0 <= v <= 1 for v in r["per_class"].values())
    assert sum(res["scene_classes"].values()) == 5 and 0 <= res["layout_kept_unrelated"] <= 1
    again = edit_success(model, G, det, wins, n_scenes=5, alpha=[0.0, 1.0, 3.0], seed=3)
    assert again["rows"] == res["rows"]                      # seeded


def test_single_groups_and_bad_input(tiny):
    G, model, det, wins = tiny
    res = edit_success(model, G, det, wins, n_scenes=3, alpha=2.0, groups=["fine"])
    assert res["groups"] == ["fine"] and len(res["rows"]) == 1
    with pytest.raises(UserError, match="groups must name"): edit_success(model, G, det, wins, n_scenes=2, groups=["top"])
    with pytest.raises(UserError, match="does not know"): edit_success(model, G, det, {"zzz": wins["a"]}, n_scenes=2)
    with pytest.raises(UserError, match="W\\+"): edit_success(model, create_generator("stylegan2-tiny", seed=0, w_dim=16), det, wins, n_scenes=2)


def test_helpers():
    x = torch.randint(0, 256, (2, 3, 20, 20), dtype=torch.uint8)
    assert torch.allclose(layout_kept(x, x), torch.ones(2, dtype=torch.float32))
    det = ClassifierDetector(SSClassifier(SSClassifierConfig(n_classes=3, size=16, n_frames=4, width=8, feat_dim=16)))
    p = frame_probs(det, x)
    assert p.shape == (2, 3) and torch.allclose(p.sum(1), torch.ones(2, dtype=p.dtype))
    with pytest.raises(UserError, match="uint8"): frame_probs(det, x.float())
    split = {"windows": torch.rand(3, 4, 1, 8, 5), "labels": torch.tensor([2, 0, 2]), "classes": ["a", "b", "c"]}
    w = windows_by_class(split)
    assert list(w) == ["a", "c"] and w["c"].shape == (2, 1, 8, 5) and torch.equal(w["a"][0], split["windows"][1, 2])
