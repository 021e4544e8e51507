"Metric core: agreement with independent scipy/numpy computations, streaming/merging, registry and bad input."
import json

import numpy as np
import pytest
import scipy.linalg
import scipy.special
import scipy.stats
import torch

from sound_video_gen.core import UserError
from sound_video_gen.metrics.distances import (FeatureStats, calc_metric, frechet_distance, frechet_distance_stats, inception_score,
                                     iter_items, kernel_distance, parse_metric, read_video_frames, register_metric,
                                     report_metric, sample_clip, to_uint8)


def scipy_fid(mu1, s1, mu2, s2):
    "The pytorch-fid / NVlabs formula with scipy's general sqrtm."
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * np.real(covmean)))


@pytest.mark.parametrize("dim,n", [(1, 10), (8, 100), (64, 300)])
def test_frechet_matches_scipy(dim, n):
    rng = np.random.default_rng(dim)
    a = rng.normal(size=(n, dim)); b = rng.normal(size=(n, dim)) @ rng.normal(size=(dim, dim)) * 0.5 + 0.3
    m1, s1 = a.mean(0), np.atleast_2d(np.cov(a, rowvar=False)); m2, s2 = b.mean(0), np.atleast_2d(np.cov(b, rowvar=False))
    assert abs(frechet_distance(m1, s1, m2, s2) - scipy_fid(m1, s1, m2, s2)) < 1e-6
    assert abs(frechet_distance(m1, s1, m2, s2) - frechet_distance(m2, s2, m1, s1)) < 1e-9
    assert abs(frechet_distance(m1, s1, m1, s1)) < 1e-8


def test_frechet_hand_computed():
    # 1-D: (m1-m2)^2 + (sd1-sd2)^2; diagonal: sum over dims.
    assert frechet_distance([0.0], [[4.0]], [3.0], [[1.0]]) == pytest.approx(10.0, abs=1e-12)
    d = frechet_distance([0, 0], np.diag([1.0, 9.0]), [1, 2], np.diag([4.0, 1.0]))
    assert d == pytest.approx(1 + 4 + (1 - 2) ** 2 + (3 - 1) ** 2, abs=1e-12)


def test_frechet_singular_covariance():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 10))  # fewer items than dims: rank-deficient covariance
    m, s = a.mean(0), np.cov(a, rowvar=False)
    assert abs(frechet_distance(m, s, m, s)) < 1e-6  # sqrt of round-off eigenvalues of a singular matrix
    assert np.isfinite(frechet_distance(m, s, m + 1, s * 2))


def test_frechet_bad_shapes():
    with pytest.raises(UserError, match="mismatched"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


@pytest.mark.parametrize("batches", [[100], [1, 99], [7, 13, 80], [50, 50]])
def test_feature_stats_streaming(batches):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(100, 6)) * 3 + 1e4
    s, i = FeatureStats(capture_all=True), 0
    for b in batches:
        s.append(torch.from_numpy(x[i:i + b])); i += b
    mu, cov = s.get_mean_cov(ddof=1)
    np.testing.assert_allclose(mu, x.mean(0), rtol=0, atol=1e-8)
    np.testing.assert_allclose(cov, np.cov(x, rowvar=False), rtol=1e-9, atol=1e-7)
    np.testing.assert_allclose(s.get_mean_cov(0)[1], np.cov(x, rowvar=False, ddof=0), rtol=1e-9, atol=1e-7)
    np.testing.assert_array_equal(s.get_all(), x)


def test_feature_stats_merge_state_and_max_items():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(90, 4))
    parts = [FeatureStats().append(x[i:i + 30]) for i in (0, 30, 60)]
    merged = FeatureStats()
    for p in parts: merged.merge(FeatureStats.from_state(p.state()))
    whole = FeatureStats().append(x)
    assert frechet_distance_stats(merged, whole) == pytest.approx(0, abs=1e-10)
    capped = FeatureStats(max_items=40).append(x[:25]).append(x[25:])
    assert capped.num_items == 40 and capped.is_full()
    np.testing.assert_allclose(capped.get_mean_cov()[0], x[:40].mean(0), atol=1e-12)


def test_feature_stats_bad_input():
    s = FeatureStats().append(np.zeros((2, 3)))
    with pytest.raises(UserError, match="dimensions"): s.append(np.zeros((2, 4)))
    with pytest.raises(UserError, match="NaN"): s.append(np.full((1, 3), np.nan))
    with pytest.raises(UserError, match="2-D"): s.append(np.zeros(3))
    with pytest.raises(UserError, match="more than 1"): FeatureStats().append(np.zeros((1, 3))).get_mean_cov(ddof=1)


def test_kernel_distance_matches_numpy_and_is_zero_for_same_set():
    rng = np.random.default_rng(3)
    X, Y = rng.normal(size=(30, 5)), rng.normal(size=(30, 5)) + 1
    k = lambda a, b: (a @ b.T / 5 + 1) ** 3
    ref = ((k(X, X).sum() - np.trace(k(X, X))) / (30 * 29) + (k(Y, Y).sum() - np.trace(k(Y, Y))) / (30 * 29)
           - 2 * k(X, Y).mean())
    assert kernel_distance(Y, X, num_subsets=1, max_subset_size=30) == pytest.approx(ref, abs=1e-6)
    same = kernel_distance(X, rng.normal(size=(30, 5)), num_subsets=20, max_subset_size=30)
    assert abs(same) < 0.2 * ref
    m, sd = kernel_distance(Y, X, num_subsets=10, max_subset_size=20, seed=5, return_std=True)
    assert m == kernel_distance(Y, X, num_subsets=10, max_subset_size=20, seed=5) and sd > 0
    with pytest.raises(UserError, match="equal width"): kernel_distance(X, X[:, :3])


def test_inception_score_matches_scipy():
    rng = np.random.default_rng(4)
    P = scipy.special.softmax(rng.normal(size=(100, 10)) * 2, axis=1)
    ref = [np.exp(np.mean([scipy.stats.entropy(q, P[i * 10:(i + 1) * 10].mean(0)) for q in P[i * 10:(i + 1) * 10]]))
           for i in range(10)]
    m, s = inception_score(P, 10)
    assert m == pytest.approx(np.mean(ref), abs=1e-6) and s == pytest.approx(np.std(ref), abs=1e-6)
    assert inception_score(np.eye(4)[np.arange(40) % 4], 2)[0] == pytest.approx(4, abs=1e-9)
    with pytest.raises(UserError, match="softmax"): inception_score(rng.normal(size=(20, 3)), 2)
    with pytest.raises(UserError, match="at least 10"): inception_score(P[:5], 10)


@pytest.mark.parametrize("name,kind,nf,nr,frames,fed", [
    ("fvd2048_16f", "fvd", 2048, 2048, 16, 16), ("fvd2048_128f_subsample8f", "fvd", 2048, 2048, 128, 16),
    ("kvd256_16f", "kvd", 256, 256, 16, 16), ("isv2048_16f", "isv", 2048, None, 16, 16),
    ("fid50k_full", "fid", 50000, None, None, None), ("kid10k", "kid", 10000, 10000, None, None),
    ("is50k", "is", 50000, None, None, None)])
def test_parse_metric(name, kind, nf, nr, frames, fed):
    s = parse_metric(name)
    assert (s.kind, s.num_fake, s.num_real, s.num_frames, s.frames_fed) == (kind, nf, nr, frames, fed)


@pytest.mark.parametrize("bad", ["fvd", "fvd2048", "fvd16_10f_subsample3f", "psnr", "fid-50k"])
def test_parse_metric_bad(bad):
    with pytest.raises(UserError): parse_metric(bad)


class Toy:
    "Video detector: per-frame mean colour; probabilities from brightness bins."
    name, input = "toy", "video"
    def features(self, x): return x.float().mean((3, 4)).flatten(1) / 255
    def probs(self, x):
        b = x.float().mean((1, 2, 3, 4)) / 255
        return torch.softmax(torch.stack([-(b - c).abs() * 40 for c in (0.2, 0.5, 0.8)], 1), 1)


def test_calc_metric_fvd_kvd_is_and_report(tmp_path):
    g = torch.Generator().manual_seed(0)
    real = torch.randint(0, 256, (40, 10, 3, 4, 4), dtype=torch.uint8, generator=g)
    other = torch.randint(0, 256, (40, 10, 3, 4, 4), dtype=torch.uint8, generator=g)
    dark = other // 4
    same = calc_metric("fvd40_4f", other, real, Toy())
    far = calc_metric("fvd40_4f", dark, real, Toy())
    assert same["results"]["fvd40_4f"] < 0.2 * far["results"]["fvd40_4f"]
    assert same["protocol"]["frames_fed"] == 4 and same["protocol"]["input"] == "uint8 [0, 255]"
    assert same["detector"]["name"] == "toy" and same["num_real"] == 40 and same["protocol_met"]
    k = calc_metric("kvd40_4f", dark, real, Toy(), num_subsets=5)
    assert k["results"]["kvd40_4f"] > 0
    i = calc_metric("isv40_8f_subsample2f", real, None, Toy(), num_splits=4)
    assert 1 <= i["results"]["isv40_8f_subsample2f_mean"] <= 3
    # float input in [-1, 1] gives the same as its uint8 rendering
    f = other.float() / 127.5 - 1
    assert calc_metric("fvd40_4f", f, real, Toy())["results"]["fvd40_4f"] == pytest.approx(same["results"]["fvd40_4f"], abs=1e-6)
    p = tmp_path / "m.jsonl"
    report_metric(same, p, method="a"); report_metric(far, p, method="b")
    recs = [json.loads(l) for l in p.read_text().splitlines()]
    assert [r["method"] for r in recs] == ["a", "b"] and recs[1]["seed"] == 0


def test_calc_metric_seed_and_fewer_items_warning():
    g = torch.Generator().manual_seed(1)
    real = torch.randint(0, 256, (30, 12, 3, 4, 4), dtype=torch.uint8, generator=g)
    a = calc_metric("fvd20_4f", real, real, Toy(), seed=0)["results"]["fvd20_4f"]
    b = calc_metric("fvd20_4f", real, real, Toy(), seed=0)["results"]["fvd20_4f"]
    c = calc_metric("fvd20_4f", real, real, Toy(), seed=1)["results"]["fvd20_4f"]
    assert a == b and a != c
    with pytest.warns(UserWarning, match="protocol is not met"):
        r = calc_metric("fvd64_4f", real, real, Toy())
    assert not r["protocol_met"] and r["num_fake"] == 30


def test_calc_metric_callable_source_and_featurestats_real():
    g = torch.Generator().manual_seed(2)
    real = torch.randint(0, 256, (32, 4, 3, 4, 4), dtype=torch.uint8, generator=g)
    spec = parse_metric("fvd32_4f")
    from sound_video_gen.metrics.distances import compute_stats
    stats = compute_stats(Toy(), real, spec, 32)
    gen = lambda n, seed: torch.randint(0, 256, (n, 4, 3, 4, 4), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))
    r = calc_metric("fvd32_4f", gen, stats, Toy(), batch_size=10)
    assert r["num_fake"] == 32 and r["num_real"] == 32 and r["results"]["fvd32_4f"] >= 0


def test_calc_metric_mse_and_bad_input():
    a = torch.zeros(3, 2, 3, 4, 4); b = torch.full((3, 2, 3, 4, 4), 0.5)
    r = calc_metric("mse", a, b)
    expect = ((to_uint8(a).float() / 127.5 - to_uint8(b).float() / 127.5) ** 2).mean().item()
    assert r["results"]["mse"] == pytest.approx(expect, abs=1e-9)
    with pytest.raises(UserError, match="pairs"): calc_metric("mse", a, b[:2])
    with pytest.raises(UserError, match="detector"): calc_metric("fvd10_4f", a, b)
    with pytest.raises(UserError, match="real set"): calc_metric("fvd10_4f", a, None, Toy())
    with pytest.raises(UserError, match="image detector"): calc_metric("fid10", a[:, 0], a[:, 0], Toy())
    with pytest.raises(UserError, match="int8|uint8"): to_uint8(torch.zeros(2, dtype=torch.int32))


def test_register_metric():
    @register_metric("mse")  # re-registering replaces; restore afterwards
    def fake_mse(spec, fake, real, det, seed, batch_size, **kw): return {spec.name: 42.0}, 1, 1
    try:
        assert calc_metric("mse", torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 2))["results"]["mse"] == 42.0
    finally:
        import importlib, sound_video_gen.metrics.distances as M
        importlib.reload(M)


def test_video_folder_source(tmp_path):
    import av
    rng = np.random.default_rng(0)
    for i in range(3):
        with av.open(str(tmp_path / f"v{i}.mp4"), "w") as c:
            s = c.add_stream("mpeg4", rate=8); s.width = s.height = 16; s.pix_fmt = "yuv420p"
            for t in range(6 if i < 2 else 2):
                fr = av.VideoFrame.from_ndarray(np.full((16, 16, 3), 40 * i + 5 * t, np.uint8), format="rgb24")
                for p in s.encode(fr): c.mux(p)
            for p in s.encode(): c.mux(p)
    v = read_video_frames(tmp_path / "v1.mp4")
    assert v.shape == (6, 3, 16, 16) and v.dtype == torch.uint8
    assert abs(int(v[0].float().mean()) - 40) <= 3
    with pytest.warns(UserWarning, match="1 video"):
        batches = list(iter_items(tmp_path, parse_metric("fvd8_4f"), 8, batch_size=8))
    assert batches[0].shape == (2, 4, 3, 16, 16)
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    with pytest.raises(UserError, match="cannot read video"): read_video_frames(tmp_path / "bad.mp4")
    with pytest.raises(UserError, match="not a folder"): list(iter_items(tmp_path / "nope", parse_metric("fvd8_4f"), 8))


def test_sample_clip():
    v = torch.arange(10).view(10, 1, 1, 1)
    rng = np.random.default_rng(0)
    starts = {int(sample_clip(v, 4, 1, rng)[0]) for _ in range(50)}
    assert starts <= set(range(7)) and len(starts) > 3
    assert sample_clip(v, 11) is None


def test_generator_source_for_image_metrics():
    class G(torch.nn.Module):
        z_dim, w_dim, num_ws, img_resolution = 4, 4, 2, 4
        def __init__(self):
            super().__init__(); self.lin = torch.nn.Linear(4, 3)
        def mapping(self, z, c, truncation_psi=1.0): return z[:, None].repeat(1, 2, 1) * truncation_psi
        def synthesis(self, ws, noise_mode="random"):
            assert noise_mode == "const"
            return torch.tanh(self.lin(ws[:, 0]))[:, :, None, None].expand(-1, 3, 4, 4)
    class Img:
        name, input = "mean", "image"
        def features(self, x): return x.float().mean((2, 3))
    real = torch.randint(0, 256, (40, 3, 4, 4), dtype=torch.uint8)
    r = calc_metric("fid40", G(), real, Img(), batch_size=16)
    assert r["num_fake"] == 40 and r["results"]["fid40"] > 0
    torch.manual_seed(0); g1 = G(); torch.manual_seed(0); g2 = G()
    assert calc_metric("fid40", g1, real, Img())["results"] == calc_metric("fid40", g2, real, Img())["results"]  # seeded z
    vids = torch.randint(0, 256, (40, 4, 3, 4, 4), dtype=torch.uint8)
    with pytest.raises(UserError, match="drive the generator"): calc_metric("fvd40_4f", G(), vids, Toy())
