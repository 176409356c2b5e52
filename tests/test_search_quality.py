"""Search quality on the analytic rare-mode benchmark (bench/search_problems.py), at equal NFE budgets.

Every comparison averages fixed seeds (the runs are bit-reproducible, so the test is deterministic); the margins
are stated next to each assertion and are several standard errors wide (see the numbers in README.md, "Measured behaviour")."""
import math

import pytest
import torch
from scipy.stats import ks_2samp

import sampling
from bench.search_problems import RareModeProblem

P = RareModeProblem()   # dim 4, rare mode weight 1 %, paper grid, VP-SDE, 10 steps


def mean_reward(method, budget, seeds, **opts):
    rs = [sampling.search(P.denoise, P.reward, P.shape, method=method, nfe_budget=budget, seed=s, **opts).reward
          for s in seeds]
    return sum(rs) / len(rs)


@pytest.fixture(scope="module")
def bon200():
    return mean_reward("bon", 200, range(24))


@pytest.mark.parametrize("method,opts,margin", [
    ("svdd", {}, 0.4),                 # measured 0.82 vs BoN 0.13 (24 seeds, s.e. ≈ 0.02)
    ("rbf", {}, 0.2),                  # measured 0.45 (s.e. ≈ 0.04)
    # SMC at a temperature matched to this toy: early rewards differ by ~1e-4 here, so the paper's β = 0.1
    # (set for VQAScore on FLUX) leaves SMC ≈ BoN, as in the paper's own Table 1 (0.877 vs 0.879)
    ("smc", {"beta": 0.003}, 0.15),    # measured 0.35 (s.e. ≈ 0.04)
])
def test_particle_methods_beat_best_of_n(bon200, method, opts, margin):
    assert mean_reward(method, 200, range(24), **opts) > bon200 + margin


def test_rbf_acceptance_diagnosis():
    """Why RBF trails SVDD on this toy: at the noisy levels x0̂ is a blurry posterior mean whose reward barely
    depends on the particle, so "beats r*" is close to a coin flip and a draw is accepted within ~2 tries at every
    intermediate level; the budget rolls over to the last level, after the rare mode has been decided.
    Requiring min_draws before an acceptance fixes it."""
    draws = []
    for seed in range(4):
        r = sampling.search(P.denoise, P.reward, P.shape, method="rbf", nfe_budget=500, seed=seed)
        draws += [e["draws"] for e in r.trace if "draws" in e and 0 < e["step"] < 9]
        assert sum(e["draws"] for e in r.trace if e.get("step") == 9) > 375   # the last level gets > 75 %
    assert sum(draws) / len(draws) < 4
    seeds = range(12)   # measured 0.88 vs 0.81, paired s.e. of the difference ≈ 0.014
    assert mean_reward("rbf", 500, seeds, min_draws=10) > mean_reward("svdd", 500, seeds) + 0.03


def _blobs():
    return sampling.GaussianMixture([[2.0, 0.0], [-2.0, 1.0], [0.0, -2.5]], [0.4, 0.6, 0.5], [0.5, 0.3, 0.2])


def test_smc_with_infinite_temperature_is_plain_sde_sampling():
    """β → ∞: weights stay uniform, nothing is resampled and the particles are distributed as sampling.sample's
    VP-SDE samples (two-sample KS per coordinate, p > 0.001, and mode fractions within 4 binomial s.e.)."""
    gm, n, steps = _blobs(), 600, 10
    reward = lambda x0: -((x0 - torch.tensor([0.0, -2.5])) ** 2).sum(1)   # prefers the third mode
    for beta in (math.inf, 1e12):
        res = sampling.search(gm.denoise, reward, (2,), method="smc", nfe_budget=n * steps, steps=steps, n=n,
                              beta=beta, seed=1)
        assert not any(e.get("resampled") for e in res.trace)
        assert all(e["ess"] == pytest.approx(n) for e in res.trace if "ess" in e)
    noise = torch.randn(n, 2, generator=torch.Generator().manual_seed(7))
    ref = sampling.sample(gm.denoise, noise, interpolant="vp", sde=True, steps=steps, seed=7)
    x = res.candidates
    for d in range(2):
        assert ks_2samp(x[:, d].numpy(), ref[:, d].numpy()).pvalue > 1e-3
    fa, fb = (torch.bincount(gm.assign(v), minlength=3).double() / n for v in (x, ref))
    se = (fb * (1 - fb) * 2 / n).sqrt()
    assert ((fa - fb).abs() < 4 * se + 1e-9).all()
    # the same statistics do detect a finite temperature: β = 1 pulls the population to the rewarded mode
    hot = sampling.search(gm.denoise, reward, (2,), method="smc", nfe_budget=n * steps, steps=steps, n=n,
                          beta=1.0, seed=1)
    fh = torch.bincount(gm.assign(hot.candidates), minlength=3).double() / n
    assert fh[2] > fb[2] + 10 * se[2]
    assert ks_2samp(hot.candidates[:, 1].numpy(), ref[:, 1].numpy()).pvalue < 1e-6


def test_gradient_guidance_raises_a_differentiable_reward():
    """DPS-style guidance (score += scale·∇r(x0̂)) alone and with SVDD/RBF, at equal NFE to the unguided runs."""
    seeds = range(32)
    plain = mean_reward("bon", 10, seeds, n=1)                           # 10 NFE, measured 0.04
    guided = mean_reward("dps", 10, seeds, guidance_scale=3000.0)         # measured 0.23 (s.e. ≈ 0.04)
    assert guided > plain + 0.1
    seeds = range(12)
    assert mean_reward("rbf", 100, seeds, guidance_scale=1000.0) > mean_reward("rbf", 100, seeds) + 0.1  # .73/.46
    assert mean_reward("svdd", 100, seeds, guidance_scale=300.0) > mean_reward("svdd", 100, seeds) + 0.03  # .77/.68
