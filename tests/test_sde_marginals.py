"""The SDE preserves the flow's marginals: statistical checks on an analytic Gaussian mixture whose denoiser
is exact (fixed seeds, stated tolerances), a KS test of one step's noise, and ODE interpolant invariance."""
import math

import pytest
import torch
from scipy import stats

from sampling import (GaussianMixture, clean_estimate, diffusion_coefficient, em_step, get_interpolant,
                      particle_noise, sample, sample_on_grid, time_grid)

GMM = GaussianMixture(means=[[2.0, 0.0], [-1.5, 1.5], [0.0, -2.5]], stds=[0.35, 0.5, 0.3], weights=[0.5, 0.3, 0.2])
N = 4000


def _moments(x):
    x = x.to(torch.float64)
    return x.mean(0), torch.cov(x.T)


@pytest.fixture(scope="module")
def data():
    ref, _ = GMM.sample_data(200_000, generator=torch.Generator().manual_seed(0))
    return _moments(ref)


@pytest.mark.parametrize("interpolant,sde", [("linear", False), ("linear", True), ("vp", True), ("vp", False),
                                             ("cosine", True)])
def test_samples_match_mixture(interpolant, sde, data):
    """Mean within 0.06, covariance within 0.12 (entrywise) and component weights within 0.03 of the truth."""
    noise = torch.randn(N, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x = sample(GMM.denoise, noise, interpolant=interpolant, sde=sde, steps=200, grid="uniform", seed=3)
    assert torch.isfinite(x).all()
    mean, cov = _moments(x)
    torch.testing.assert_close(mean, data[0], rtol=0, atol=0.06)
    torch.testing.assert_close(cov, data[1], rtol=0, atol=0.12)
    freq = torch.bincount(GMM.assign(x), minlength=3).double() / N
    torch.testing.assert_close(freq, GMM.weights, rtol=0, atol=0.03)


def test_sde_actually_diffuses():
    """Same start noise: the SDE ends elsewhere than the ODE, and two SDE seeds differ (not a silent ODE)."""
    noise = torch.randn(256, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    ode = sample(GMM.denoise, noise, interpolant="vp", sde=False, steps=50, grid="uniform")
    a = sample(GMM.denoise, noise, interpolant="vp", sde=True, steps=50, grid="uniform", seed=1)
    b = sample(GMM.denoise, noise, interpolant="vp", sde=True, steps=50, grid="uniform", seed=2)
    assert (a - ode).norm(dim=1).mean() > 0.2
    assert (a - b).norm(dim=1).mean() > 0.2
    torch.testing.assert_close(a, sample(GMM.denoise, noise, interpolant="vp", sde=True, steps=50, grid="uniform", seed=1))


def test_one_step_increment_is_gaussian_ks():
    """(x_next − drift)/(g√Δ) is N(0, 1): Kolmogorov–Smirnov p > 0.01, for particle_noise draws."""
    ip, s, s_next = get_interpolant("vp"), 0.8, 0.7
    x = torch.randn(2000, 2, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    x0, eps = clean_estimate(GMM.denoise, x, s, ip)
    g = diffusion_coefficient("square", s, 3.0)
    z = particle_noise((2,), seed=11, particle_ids=range(2000), step=4, dtype=torch.float64)
    drift = em_step(x, x0, eps, s, s_next, ip, 0.0)
    inc = (em_step(x, x0, eps, s, s_next, ip, g, z) - drift) / (g * math.sqrt(s - s_next))
    assert stats.kstest(inc.flatten().numpy(), "norm").pvalue > 0.01
    assert abs(float(torch.corrcoef(inc.T)[0, 1])) < 0.06


def test_particle_noise_depends_only_on_seed_particle_step():
    a = particle_noise((3, 4), seed=5, particle_ids=[0, 1, 2, 3], step=2)
    b = particle_noise((3, 4), seed=5, particle_ids=[2, 3], step=2)
    torch.testing.assert_close(a[2:], b, rtol=0, atol=0)
    assert not torch.equal(a[0], particle_noise((3, 4), seed=5, particle_ids=[0], step=3)[0])
    assert not torch.equal(a[0], particle_noise((3, 4), seed=6, particle_ids=[0], step=2)[0])
    z = particle_noise((4096,), seed=0, particle_ids=range(4), step=0).flatten()
    assert stats.kstest(z.numpy(), "norm").pvalue > 0.01


def test_diffusion_families():
    assert diffusion_coefficient("square", 0.5, 3.0) == pytest.approx(0.75)
    assert diffusion_coefficient("linear", 0.5, 2.0) == pytest.approx(1.0)
    assert diffusion_coefficient("clipping", 0.25, 1.0) == 0.0
    assert diffusion_coefficient("tan", 0.99, 1.0) == pytest.approx(math.tan(0.5 * math.pi * 0.95))
    assert diffusion_coefficient("sigma", 0.5, 1.0, "vp") == pytest.approx(float(get_interpolant("vp").sigma(0.5)))
    assert diffusion_coefficient("ode", 0.7, 3.0) == 0.0
    with pytest.raises(ValueError, match="unknown diffusion"):
        diffusion_coefficient("brownian", 0.5)


def test_probability_flow_ode_is_interpolant_invariant():
    """Same start (the VP start state, mapped to the linear path), fine grids: linear-ODE and VP-ODE agree."""
    vp, lin = get_interpolant("vp"), get_interpolant("linear")
    noise = torch.randn(512, 2, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    t0, c0 = (float(v) for v in vp.to_linear(1.0))
    x_vp = sample_on_grid(GMM.denoise, noise * float(vp.sigma(1.0)), time_grid(2000, "uniform"), interpolant=vp, sde=False)
    lin_grid = torch.linspace(t0, 0.0, 2001, dtype=torch.float64)
    x_lin = sample_on_grid(GMM.denoise, noise * float(vp.sigma(1.0)) / c0, lin_grid, interpolant=lin, sde=False)
    err = (x_vp - x_lin).norm(dim=1) / x_lin.norm(dim=1).clamp_min(1e-3)
    assert float(err.median()) < 2e-3 and float(err.quantile(0.95)) < 2e-2
