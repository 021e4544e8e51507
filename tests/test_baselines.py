"Baselines behind the one interface, tested with a tiny stand-in generator that has the NVlabs interface."
import pytest
import torch

from sound_video_gen.core import UserError
from sound_video_gen.metrics.baselines import (AudioReactiveWalk, LinearInterpolation, METHODS, NoiseVideos, RealClips,
                                       ShuffledFrames, check_windows, get_method)


class StandIn(torch.nn.Module):
    "z -> w by a random MLP, w -> image by a random linear map to an 8x8 RGB image (NVlabs attribute names)."
    def __init__(self, z_dim=16, w_dim=12, num_ws=6, res=8):
        super().__init__()
        self.z_dim, self.w_dim, self.num_ws, self.img_resolution, self.c_dim = z_dim, w_dim, num_ws, res, 0
        torch.manual_seed(0)
        self.map_net = torch.nn.Sequential(torch.nn.Linear(z_dim, w_dim), torch.nn.LeakyReLU(0.2), torch.nn.Linear(w_dim, w_dim))
        self.syn = torch.nn.Linear(w_dim * num_ws, 3 * res * res)
        self.register_buffer("w_avg", torch.zeros(w_dim))
        self.calls = []
    def mapping(self, z, c, truncation_psi=1.0, truncation_cutoff=None):
        w = self.map_net(z)
        return (self.w_avg + truncation_psi * (w - self.w_avg))[:, None].repeat(1, self.num_ws, 1)
    def synthesis(self, ws, noise_mode="random"):
        self.calls.append(noise_mode)
        return torch.tanh(self.syn(ws.flatten(1))).view(-1, 3, self.img_resolution, self.img_resolution)


@pytest.fixture
def G(): return StandIn().eval()


def windows(T=10, seed=0):
    return torch.rand(T, 1, 20, 6, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", ["linear-interpolation", "audio-reactive-walk"])
def test_generator_methods_shapes_range_determinism(G, name):
    m = get_method(name)
    v = m(windows(), G, seed=5)
    assert v.shape == (10, 3, 8, 8) and v.min() >= -1 and v.max() <= 1
    assert torch.equal(v, m(windows(), G, seed=5))
    assert not torch.equal(v, m(windows(), G, seed=6))  # the start latent is per clip
    assert set(G.calls) == {"const"}
    assert m.latents(windows(), G, 5).shape == (10, G.num_ws, G.w_dim)


def test_linear_interpolation_hits_keys_and_ignores_audio(G):
    m = LinearInterpolation(n_keys=3, truncation_psi=1.0)
    ws = m.latents(windows(9), G, seed=1)
    z = torch.randn(3, G.z_dim, generator=torch.Generator().manual_seed(1))
    keys = G.mapping(z, None)
    torch.testing.assert_close(ws[[0, 4, 8]], keys)
    torch.testing.assert_close(m.latents(windows(9, seed=7), G, 1), ws)
    with pytest.raises(UserError, match="n_keys"): LinearInterpolation(n_keys=1)


def test_audio_reactive_walk_follows_the_sound(G):
    m = AudioReactiveWalk(n_bands=2)
    silent = torch.zeros(12, 1, 20, 6)
    ws = m.latents(silent, G, 0)
    assert torch.allclose(ws, ws[:1].expand_as(ws), atol=1e-6)  # no sound, no movement
    w = silent.clone(); w[6, 0, 10:] = 1.0  # a high-band burst at frame 6
    ws = m.latents(w, G, 0)
    jumps = (ws[1:] - ws[:-1]).norm(dim=(1, 2))
    assert int(jumps.argmax()) == 5 and jumps[5] > 10 * jumps[0]
    # the directions are fixed across clips: two clips with the same sound move the same way from their starts
    a, b = m.latents(w, G, 0), m.latents(w, G, 1)
    torch.testing.assert_close(a - a[:1], b - b[:1])
    loud, bands = AudioReactiveWalk.audio_features(w, 2)
    assert loud.shape == (12,) and bands.shape == (12, 2) and bands[6, 1] == 1 and bands[6, 0] == 0


def test_real_clips_and_controls():
    clip = {"frames": torch.rand(10, 3, 8, 8) * 2 - 1}
    assert torch.equal(RealClips()(windows(), clip=clip), clip["frames"])
    assert torch.equal(RealClips()(windows(4), clip=clip), clip["frames"][:4])
    s = ShuffledFrames()(windows(), clip=clip, seed=3)
    assert not torch.equal(s, clip["frames"]) and torch.allclose(s.sort(0).values, clip["frames"].sort(0).values)
    n = NoiseVideos()(windows(), clip=clip)
    assert n.shape == clip["frames"].shape and n.min() >= -1 and n.max() <= 1
    with pytest.raises(UserError, match="dataset clip"): RealClips()(windows())


def test_bad_input(G):
    with pytest.raises(UserError, match="n_mels"): check_windows(torch.zeros(4, 20, 6))
    with pytest.raises(UserError, match="NaN"): check_windows(torch.full((2, 1, 3, 3), float("nan")))
    with pytest.raises(UserError, match="NVlabs interface"): LinearInterpolation()(windows(), torch.nn.Linear(2, 2))
    with pytest.raises(UserError, match="unknown method"): get_method("ssvg-v2")
    assert set(METHODS) >= {"linear-interpolation", "audio-reactive-walk", "real-clips"}


def test_with_the_package_stylegan2():
    from sound_video_gen.generators import stylegan2 as sg2
    G = sg2.StyleGAN2Generator(sg2.StyleGAN2Config(z_dim=32, w_dim=32, img_resolution=16, mapping_layers=2,
                                                   channel_base=256, channel_max=32)).eval()
    v = AudioReactiveWalk()(windows(4), G, seed=0)
    assert v.shape == (4, 3, 16, 16) and torch.isfinite(v).all()
