"""Core utilities: configs, registry, atomic writes, checkpoints, seeding."""
import json, os

import numpy as np
import pytest
import torch

from sound_video_gen.core import (Config, UserError, atomic_path, atomic_write_text, config_class, get_config,
                                  get_device, list_configs, load_checkpoint, load_state_strict, read_checkpoint_meta,
                                  save_checkpoint, seed_everything, flatten_state, unflatten_state)
from sound_video_gen.audio import MelConfig


@pytest.mark.parametrize("name", list_configs())
def test_every_named_config_round_trips(name):
    cfg = get_config(name)
    assert isinstance(cfg, Config)
    again = type(cfg).from_json(cfg.to_json())
    assert again == cfg


def test_named_configs_exist():
    assert {"mel-paper", "mel-tiny"} <= set(list_configs())
    assert get_config("mel-paper") == MelConfig()


def test_unknown_keys_are_named():
    with pytest.raises(UserError, match=r"unknown MelConfig key\(s\): hop, nmels"):
        MelConfig.from_dict({"nmels": 1, "hop": 2})


def test_wrong_class_is_refused():
    d = MelConfig().to_dict(); d["config_class"] = "sound_video_gen.audio.SomethingElse"
    with pytest.raises(UserError, match="not a MelConfig"):
        MelConfig.from_dict(d)


def test_config_class_outside_package_is_refused():
    with pytest.raises(UserError, match="outside the allowed packages"):
        config_class("os.system")
    with pytest.raises(UserError, match="does not exist"):
        config_class("sound_video_gen.audio.NoSuchThing")
    with pytest.raises(UserError, match="is not a Config class"):
        config_class("sound_video_gen.audio.load_audio")


def test_bad_json_file(tmp_path):
    f = tmp_path / "broken.json"; f.write_text("{not json")
    with pytest.raises(UserError, match="is not valid JSON"):
        get_config(str(f))


def test_types_are_checked():
    with pytest.raises(UserError, match="MelConfig.n_mels must be int"):
        MelConfig.from_dict({"n_mels": "many"})
    assert MelConfig.from_dict({"f_min": 10}).f_min == 10.0  # ints are fine where floats are expected


def test_atomic_path_never_leaves_partial_files(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"new but incomplete")
            raise KeyboardInterrupt
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_atomic_write_refuses_missing_folder(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        atomic_write_text(tmp_path / "no" / "such" / "file.txt", "x")


def test_checkpoint_round_trip_with_optimizer_and_rng(tmp_path):
    seed_everything(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for _ in range(3):
        opt.zero_grad(); model(torch.randn(5, 4)).pow(2).mean().backward(); opt.step()
    state = {"model": model.state_dict(), "opt": opt.state_dict(), "torch_rng": torch.get_rng_state(),
             "np_rng": list(np.random.get_state()[1][:5]), "step": 3}
    path = save_checkpoint(tmp_path / "ck.safetensors", state, MelConfig(n_mels=64), meta={"note": "x"})
    back, cfg, meta = load_checkpoint(path)
    assert MelConfig.from_dict(cfg).n_mels == 64 and meta == {"note": "x"}
    assert back["step"] == 3
    torch.testing.assert_close(back["torch_rng"], state["torch_rng"])
    opt2 = torch.optim.AdamW(model.parameters(), lr=1e-3)
    opt2.load_state_dict(back["opt"])
    for k, v in opt.state_dict()["state"][0].items():
        torch.testing.assert_close(opt2.state_dict()["state"][0][k], v)


def test_checkpoint_with_tied_weights(tmp_path):
    emb = torch.nn.Embedding(10, 4)
    head = torch.nn.Linear(4, 10, bias=False); head.weight = emb.weight
    m = torch.nn.ModuleDict({"emb": emb, "head": head})
    back, _, _ = load_checkpoint(save_checkpoint(tmp_path / "tied.safetensors", m))
    torch.testing.assert_close(back["head.weight"], back["emb.weight"])


def test_checkpoint_refuses_overwrite_when_asked(tmp_path):
    p = save_checkpoint(tmp_path / "a.safetensors", {"x": torch.ones(2)})
    with pytest.raises(UserError, match="already exists"):
        save_checkpoint(p, {"x": torch.zeros(2)}, overwrite=False)
    assert load_checkpoint(p)[0]["x"].sum() == 2


def test_checkpoint_bad_files(tmp_path):
    with pytest.raises(UserError, match="does not exist"): load_checkpoint(tmp_path / "none.safetensors")
    with pytest.raises(UserError, match="is a folder"): load_checkpoint(tmp_path)
    junk = tmp_path / "junk.safetensors"; junk.write_bytes(os.urandom(100))
    with pytest.raises(UserError, match="not a safetensors checkpoint"): load_checkpoint(junk)
    from safetensors.torch import save_file
    foreign = tmp_path / "foreign.safetensors"; save_file({"w": torch.ones(1)}, str(foreign))
    with pytest.raises(UserError, match="not a sound_video_gen checkpoint"): read_checkpoint_meta(foreign)


def test_checkpoint_refuses_non_tensor_objects(tmp_path):
    with pytest.raises(UserError, match="cannot store a object"):
        save_checkpoint(tmp_path / "x.safetensors", {"bad": object()})


def test_flatten_handles_int_keys_and_tuples():
    obj = {"a": {1: torch.ones(2), 2: (3, torch.zeros(1))}, "b": [None, True, 1.5, "s"]}
    t, sk = flatten_state(obj)
    back = unflatten_state(t, json.loads(json.dumps(sk)))
    assert back["b"] == obj["b"] and back["a"][2][0] == 3
    torch.testing.assert_close(back["a"][1], obj["a"][1])


def test_load_state_strict_names_keys():
    src = torch.nn.Linear(3, 2).state_dict()
    with pytest.raises(UserError, match="missing .*; unexpected extra"):
        load_state_strict(torch.nn.Linear(3, 2), {"weight": src["weight"], "extra": torch.ones(1)})


def test_seed_everything_covers_all_generators():
    outs = []
    for _ in range(2):
        seed_everything(123)
        import random
        outs.append((random.random(), float(np.random.rand()), float(torch.randn(1))))
    assert outs[0] == outs[1]
    with pytest.raises(UserError): seed_everything(2 ** 40)
    with pytest.raises(UserError): seed_everything(True)


def test_get_device():
    assert get_device("cpu").type == "cpu"
    assert get_device("auto").type in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="no CUDA GPU"):
            get_device("cuda")
