"""Replay checked against an independent regeneration (issue 11): every candidate of a search is rebuilt here from
its seed and lineage with this file's own code, written from the method spec, not with the search's helpers:

* the noise key: N(0, I) from a CPU generator seeded with blake2b("flowsearch:<seed>,<pid>,<step>") (README,
  "Reproducibility"; the contract that makes a candidate regenerable from its report);
* the VP interpolant (spec §3.1: B(s) = 0.1 s + 9.95 s², α = e^{−B/2}, σ = √(1 − e^{−B})) with numerical
  derivatives, the SNR-matched linear time t = σ/(α + σ) and scale c = α + σ (spec §3.3);
* the Euler–Maruyama step of Eq. 9/12 with g(s) = 3s² at the *current* clock, SoP's forward re-noising kernel and
  noise search's variance-preserving perturbation.

So a change of the seed mixing, of the clock at which g is taken, of a drift sign or of the lineage that a method
records fails here, even when `sampling.replay` (which shares the search's helpers) would agree with the search."""
import hashlib
import math

import pytest
import torch

import sampling

SEED, SHAPE, STEPS = 11, (3, 4, 4), 4


def denoise(x_t, t):
    """A fixed nonlinear 'model' on the linear path (elementwise, so batching cannot change a bit)."""
    return 0.8 * torch.tanh(x_t) * (1.0 - 0.3 * t.reshape(-1, 1, 1, 1)) + 0.1 * x_t.roll(1, dims=-1)


def reward(x0):
    return -(x0 - 0.2).flatten(1).pow(2).mean(1)


# ---- the independent regeneration -------------------------------------------------------------------
def key_noise(pid, step):
    h = hashlib.blake2b(f"flowsearch:{SEED},{int(pid)},{int(step)}".encode(), digest_size=8)
    g = torch.Generator().manual_seed(int.from_bytes(h.digest(), "little") & ((1 << 63) - 1))
    return torch.randn(SHAPE, generator=g)[None]


def vp(s):
    B = 0.1 * s + 0.5 * (20.0 - 0.1) * s * s
    return math.exp(-0.5 * B), math.sqrt(-math.expm1(-B))


def d_vp(s, h=1e-6):
    lo, hi = max(s - h, 0.0), s + h
    (a0, s0), (a1, s1) = vp(lo), vp(hi)
    return (a1 - a0) / (hi - lo), (s1 - s0) / (hi - lo)


def clean(x, s):
    a, sg = vp(s)
    x0 = denoise(x / (a + sg), torch.tensor([sg / (a + sg)], dtype=torch.float32))
    return x0, (x - a * x0) / sg


def euler_maruyama(x, s, s_next, g, z):
    a, sg = vp(s)
    da, dsg = d_vp(s)
    x0, eps = clean(x, s)
    dt = s - s_next
    x = x - dt * (da * x0 + dsg * eps) - dt * 0.5 * g * g * eps / sg
    return x + g * math.sqrt(dt) * z if g > 0 else x


def regenerate(lineage):
    x = s = None
    for op in lineage:
        kind, args = op[0], op[1:]
        if kind == "noise":
            x, s = key_noise(args[0], args[1]), args[2]
        elif kind == "sde":
            p, step, s_, s_next, g, _ = args
            assert s_ == s and g == pytest.approx(3.0 * s * s)      # g = 3s² at the current clock
            x, s = euler_maruyama(x, s, s_next, g, key_noise(p, step)), s_next
        elif kind == "ode":
            assert args[0] == s
            x, s = euler_maruyama(x, s, args[1], 0.0, None), args[1]
        elif kind == "perturb":
            lam = args[2]
            x = (x + lam * key_noise(args[0], args[1])) / math.sqrt(1 + lam * lam)
        elif kind == "renoise":
            p, step, s_, f = args
            (a_s, sg_s), (a_f, sg_f) = vp(s_), vp(f)
            r = a_f / a_s
            x, s = r * x + math.sqrt(sg_f ** 2 - (r * sg_s) ** 2) * key_noise(p, step), f
        else:
            raise AssertionError(f"unknown lineage op {kind}")
    return clean(x, s)[0]


CASES = [("bon", {"n": 3}), ("svdd", {"n": 2, "k": 2}), ("code", {"n": 2, "k": 2, "block": 2}),
         ("smc", {"n": 4, "ess_threshold": 1.0}), ("rbf", {}), ("noise_search", {"k": 2}),
         ("sop", {"n": 2, "k": 2}), ("psp", {})]


@pytest.mark.parametrize("method, opts", CASES, ids=[c[0] for c in CASES])
def test_every_candidate_is_its_independently_regenerated_lineage(method, opts):
    res = sampling.search(denoise, reward, SHAPE, method=method, nfe_budget=48, steps=STEPS, seed=SEED,
                          interpolant="vp", **opts)
    assert len(res.seeds) == res.candidates.shape[0] >= 1
    for i, rec in enumerate(res.seeds):
        assert rec["seed"] == SEED and rec["interpolant"] == "vp"
        x0 = regenerate(rec["lineage"])
        torch.testing.assert_close(x0, res.candidates[i:i + 1], rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(reward(x0), res.candidate_rewards[i:i + 1].float(), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(regenerate(res.seeds[res.chosen]["lineage"]), res.sample, rtol=1e-4, atol=1e-4)


def test_the_regeneration_is_sensitive_to_the_seed():
    """Control: the independent regeneration is not trivially equal to anything (a wrong seed is far off)."""
    global SEED
    res = sampling.search(denoise, reward, SHAPE, method="bon", nfe_budget=12, steps=STEPS, seed=SEED, n=3)
    old, SEED = SEED, SEED + 1
    try:
        far = regenerate(res.seeds[0]["lineage"])
    finally:
        SEED = old
    assert (far - res.candidates[:1]).abs().max() > 0.05
