"""A bundle is a closed folder and untrusted input: a tampered-card corpus and the four ways out of the folder, each
refused in one sentence by the API and the CLI; --overwrite and --add never destroy what they did not make."""
import json, os, shutil, stat
from pathlib import Path

import pytest
import torch

from sound_video_gen.apps.pipeline import SoundToVideo
from sound_video_gen.cli import dispatch
from sound_video_gen.core import UserError, run_cli
from sound_video_gen.core import get_config
from sound_video_gen.generators.factory import create_generator
from sound_video_gen.model.bundle import BUNDLE_CARD, add_to_bundle, bundle_paths, make_bundle, verify_bundle
from sound_video_gen.model.inversion import ImageEncoder
from sound_video_gen.model.ssvg import SSVG


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    d = tmp_path_factory.mktemp("bundles")
    G = create_generator("stylegan2-tiny", seed=0).eval()
    torch.manual_seed(0)
    return make_bundle(d / "tiny", G, SSVG(get_config("ssvg-tiny").for_generator(G)).eval())


def _copy(bundle, tmp_path, name="b"):
    return Path(shutil.copytree(bundle, tmp_path / name, symlinks=True))


def _edit_card(folder, edit):
    card = json.loads((folder / BUNDLE_CARD).read_text())
    edit(card)
    (folder / BUNDLE_CARD).write_text(json.dumps(card))
    return folder


def _refused(folder, says, capsys):
    "The API and two commands refuse the bundle in one sentence."
    with pytest.raises(UserError, match=says) as e: SoundToVideo.from_pretrained(folder)
    assert "\n" not in str(e.value)
    import numpy as np, soundfile as sf
    tone = folder.parent / "tone.wav"
    sf.write(tone, (0.3 * np.sin(np.linspace(0, 800, 16000))).astype("float32"), 16000)
    for argv in (["bundle", str(folder), "--verify"], ["generate", str(tone), "-o", str(folder.parent / "v.mp4"), "--model", str(folder)]):
        assert run_cli(dispatch, argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
        assert says in err or "NaN" in err, (argv[0], err)
    assert not (folder.parent / "v.mp4").exists()


def _set(role, **kw): return lambda card: card["files"][role].update(**kw)

CARDS = {
    "format missing": (lambda c: c.pop("format"), "is not a sound_video_gen.bundle/1 card"),
    "files a list": (lambda c: c.update(files=[1]), "has no files object"),
    "ssvg entry null": (lambda c: c["files"].update(ssvg=None), "not an object"),
    "ssvg entry a string": (lambda c: c["files"].update(ssvg="ssvg.safetensors"), "not an object"),
    "path missing": (lambda c: c["files"]["ssvg"].pop("path"), "without a path"),
    "path an int": (_set("ssvg", path=7), "without a path"),
    "path a list": (_set("ssvg", path=["ssvg.safetensors"]), "without a path"),
    "sha256 missing": (lambda c: c["files"]["ssvg"].pop("sha256"), "without a sha256"),
    "unknown role": (lambda c: c["files"].update(extra=dict(c["files"]["ssvg"])), "unknown role"),
    "generator missing": (lambda c: c["files"].pop("generator"), "lists no generator"),
    "mel missing": (lambda c: c.pop("mel"), "no mel object"),
    "fps a string": (lambda c: c.update(fps="fast"), "fps 'fast'"),
    "fps zero": (lambda c: c.update(fps=0), "fps 0"),
    "fps negative": (lambda c: c.update(fps=-16), "fps -16"),
    "fps true": (lambda c: c.update(fps=True), "fps True"),
    "training a list": (lambda c: c.update(training=[1]), "training that is a list"),
}


@pytest.mark.parametrize("name", sorted(CARDS))
def test_a_tampered_card_is_one_sentence(name, bundle, tmp_path, capsys):
    edit, says = CARDS[name]
    _refused(_edit_card(_copy(bundle, tmp_path), edit), says, capsys)


def test_non_finite_fps_and_raw_nan_are_refused(bundle, tmp_path, capsys):
    b = _copy(bundle, tmp_path)
    (b / BUNDLE_CARD).write_text((b / BUNDLE_CARD).read_text().replace('"fps": 8.0', '"fps": NaN'))
    _refused(b, "NaN is not a JSON number", capsys)


def test_an_oversized_card_is_refused_before_it_is_parsed(bundle, tmp_path, capsys):
    b = _copy(bundle, tmp_path)
    card = json.loads((b / BUNDLE_CARD).read_text())
    card["description"] = "x" * (2 * 2**20)
    (b / BUNDLE_CARD).write_text(json.dumps(card))
    _refused(b, "at most 1 MiB is read", capsys)


@pytest.fixture
def outside(bundle, tmp_path):
    "A copy of the model file outside the bundle: the same bytes, so its sha256 matches the card."
    o = tmp_path / "outside"; o.mkdir()
    shutil.copy(bundle / "ssvg.safetensors", o / "ssvg.safetensors")
    return o


def test_four_ways_out_of_the_folder_are_refused(bundle, tmp_path, outside, capsys):
    absolute = _edit_card(_copy(bundle, tmp_path, "abs"), _set("ssvg", path=str(outside / "ssvg.safetensors")))
    _refused(absolute, "plain file names", capsys)
    dotdot = _edit_card(_copy(bundle, tmp_path, "dotdot"), _set("ssvg", path="../outside/ssvg.safetensors"))
    _refused(dotdot, "plain file names", capsys)
    linked = _copy(bundle, tmp_path, "linked-file")
    (linked / "ssvg.safetensors").unlink(); (linked / "ssvg.safetensors").symlink_to(outside / "ssvg.safetensors")
    _refused(linked, "leads outside the bundle", capsys)
    sub = _copy(bundle, tmp_path, "linked-folder")
    (sub / "sub").symlink_to(outside, target_is_directory=True)
    _refused(_edit_card(sub, _set("ssvg", path="sub/ssvg.safetensors")), "plain file names", capsys)


def test_a_link_inside_the_folder_and_a_hub_snapshot_are_fine(bundle, tmp_path):
    inside = _copy(bundle, tmp_path, "inside")
    (inside / "weights.bin").write_bytes((inside / "ssvg.safetensors").read_bytes())
    (inside / "ssvg.safetensors").unlink(); (inside / "ssvg.safetensors").symlink_to("weights.bin")
    assert verify_bundle(inside) and bundle_paths(inside)["ssvg"].name == "weights.bin"
    # the Hugging Face cache: snapshots/<rev>/file -> ../../blobs/<hash>
    repo = tmp_path / "hub" / "models--someone--tiny"
    snap, blobs = repo / "snapshots" / ("0" * 40), repo / "blobs"
    snap.mkdir(parents=True); blobs.mkdir()
    for f in bundle.iterdir():
        shutil.copy(f, blobs / f.name); (snap / f.name).symlink_to(Path("../../blobs") / f.name)
    assert SoundToVideo.from_pretrained(snap).G.img_resolution == 32


def test_overwrite_replaces_only_a_bundle(bundle, tmp_path, capsys):
    keep = tmp_path / "keep"; keep.mkdir()
    (keep / "thesis.tex").write_text("years of work")
    argv = ["bundle", str(keep), "--model", str(bundle / "ssvg.safetensors"), "--generator", str(bundle / "generator.safetensors"), "--overwrite"]
    assert run_cli(dispatch, argv) == 2 and "not a bundle" in capsys.readouterr().err
    assert [p.name for p in keep.iterdir()] == ["thesis.tex"] and (keep / "thesis.tex").read_text() == "years of work"
    again = _copy(bundle, tmp_path, "again")
    argv[1] = str(again)
    assert run_cli(dispatch, argv) == 0 and verify_bundle(again)    # a bundle is replaced
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".again.")]


def test_a_bundle_folder_follows_the_umask(bundle, tmp_path):
    old = os.umask(0o022)
    try:
        out = make_bundle(tmp_path / "u", create_generator("stylegan2-tiny", seed=0), SSVG(get_config("ssvg-tiny").for_generator(
            create_generator("stylegan2-tiny", seed=0))))
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o644 for p in out.iterdir())


def test_a_refused_add_leaves_the_bundle_as_it_was(bundle, tmp_path, capsys):
    b = _copy(bundle, tmp_path)
    G3 = create_generator("stylegan3-t-tiny", seed=0)
    wrong = tmp_path / "wrong.safetensors"
    from sound_video_gen.model.inversion import save_image_encoder
    save_image_encoder(wrong, ImageEncoder.for_generator(G3, widths=(8, 8, 8, 8), units=(1, 1, 1, 1), head_width=8))
    before = {p.name: p.read_bytes() for p in b.iterdir()}
    assert run_cli(dispatch, ["bundle", str(b), "--add", f"image_encoder={wrong}"]) == 2
    assert "does not fit together" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in b.iterdir()} == before
    assert run_cli(dispatch, ["bundle", str(b), "--verify"]) == 0
    # a fitting encoder replaces an old one through the card: the old file goes, the new is checked
    G = create_generator("stylegan2-tiny", seed=0)
    add_to_bundle(b, "image_encoder", ImageEncoder.for_generator(G, widths=(8, 8, 8, 8), units=(1, 1, 1, 1), head_width=8))
    first = bundle_paths(b)["image_encoder"].name
    torch.manual_seed(5)
    card = add_to_bundle(b, "image_encoder", ImageEncoder.for_generator(G, widths=(8, 8, 8, 8), units=(1, 1, 1, 1), head_width=8),
                         overwrite=True)
    assert card["files"]["image_encoder"]["path"] != first and not (b / first).exists() and verify_bundle(b)


def test_an_audio_encoder_for_other_mel_bands_does_not_fit(tmp_path):
    "F_a built for 64 mel bands beside a model whose front end makes 32 is refused when the bundle is made."
    from sound_video_gen.multimodal.audio_encoder import AudioEncoder
    from sound_video_gen.multimodal.clip import load_clip
    G = create_generator("stylegan2-tiny", seed=0)
    model = SSVG(get_config("ssvg-tiny").for_generator(G))           # mel-tiny: 32 bands
    clip = load_clip("clip-tiny")
    fa64 = AudioEncoder(get_config("audio-encoder-tiny", n_mels=64, embed_dim=clip.embed_dim))
    with pytest.raises(UserError, match="F_a takes 64 mel bands, the model's front end makes 32") as e:
        make_bundle(tmp_path / "b", G, model, fa64, clip)
    assert str(tmp_path / "b") in str(e.value) and ".b." not in str(e.value)   # names the bundle, not its temporary folder
    assert not (tmp_path / "b").exists() and not list(tmp_path.iterdir())
    fa32 = AudioEncoder(get_config("audio-encoder-tiny", embed_dim=clip.embed_dim))
    assert verify_bundle(make_bundle(tmp_path / "b", G, model, fa32, clip))


def test_an_allocator_failure_is_one_sentence(monkeypatch, capsys):
    import sound_video_gen.cli as cli
    def huge(argv): raise RuntimeError("[enforce fail at alloc_cpu.cpp:118] DefaultCPUAllocator: can't allocate memory: "
                                       "you tried to allocate 68719476736 bytes.")
    assert run_cli(huge, []) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ran out of memory; use a smaller --batch-size") and "Traceback" not in err
    def bug(argv): raise RuntimeError("shape mismatch")   # any other RuntimeError is a bug and keeps its traceback
    with pytest.raises(RuntimeError, match="shape mismatch"): run_cli(bug, [])
