"""Particle-search core (issue 3): budgets, determinism, batching invariance, seeds/replay, errors, callback.

All on the analytic Gaussian-mixture flow (bench/search_problems.py), which has an exact denoiser."""
import json
import math

import pytest
import torch

import sampling
from bench.search_problems import RareModeProblem
from search_helpers import same, stable

P = RareModeProblem(dim=3)

# (method, options) covering every method and the non-default variants; budgets/steps kept small for speed
CASES = [
    ("bon", {}),
    ("noise_search", {}),
    ("noise_search", {"mode": "random", "k": 3}),
    ("sop", {"k": 2}),
    ("sop", {"k": 2, "selection": "per_parent", "ode_steps": 1}),
    ("smc", {}),
    ("smc", {"beta": 0.01, "potential": "max", "ess_threshold": 0.5}),
    ("smc", {"potential": "add", "finish_steps": 2}),
    ("svdd", {}),
    ("svdd", {"beta": 0.05, "n": 3}),
    ("code", {}),
    ("code", {"block": 3, "k": 2}),
    ("rbf", {}),
    ("rbf", {"init_noises": None}),
    ("rbf", {"last_level": "stop", "min_draws": 2, "n": 1}),
    ("svdd", {"guidance_scale": 300.0}),
    ("rbf", {"guidance_scale": 300.0}),
    ("dps", {"guidance_scale": 300.0, "n": 2}),
    ("rbf", {"interpolant": "cosine", "grid": "uniform"}),
    ("bon", {"interpolant": "linear", "sde": False}),
    ("smc", {"interpolant": "polynomial:2"}),
    ("smc", {"parametrisation": "ve"}),
]
IDS = [f"{m}-{'-'.join(f'{k}={v}' for k, v in o.items()) or 'default'}" for m, o in CASES]


def denoise_ve(x, sigma):
    """The same model in the k-diffusion convention: x_ve = x0 + σ·ε ⇔ x_t = x_ve/(1 + σ), t = σ/(1 + σ)."""
    s = sigma.reshape(-1, *([1] * (x.dim() - 1)))
    return P.denoise(x / (1 + s), sigma / (1 + sigma))


def model(opts):
    return denoise_ve if opts.get("parametrisation") == "ve" else P.denoise


def run(method, budget=60, steps=5, seed=3, max_batch=None, **opts):
    return sampling.search(model(opts), P.reward, P.shape, method=method, nfe_budget=budget, steps=steps, seed=seed,
                           max_batch=max_batch, **opts)


@pytest.mark.parametrize("method,opts", CASES, ids=IDS)
def test_budget_determinism_batching_replay(method, opts):
    r = stable(run, method, opts, batches=(1, 8))
    assert 0 < r.nfe <= 60 and r.budget == 60
    # result structure and the returned sample
    n = r.candidates.shape[0]
    assert r.candidates.shape == (n, *P.shape) and r.candidate_rewards.shape == (n,) and len(r.seeds) == n
    assert r.sample.shape == (1, *P.shape) and math.isfinite(r.reward) and torch.isfinite(r.candidates).all()
    assert r.search_reward == float(r.candidate_rewards.max()) == float(r.candidate_rewards[r.chosen])
    if not opts.get("finish_steps"):
        assert torch.equal(r.sample, r.candidates[r.chosen:r.chosen + 1]) and r.reward == r.search_reward
    # seeds regenerate every candidate exactly (guided lineages need the same differentiable reward)
    for i, s in enumerate(r.seeds):
        x0 = sampling.replay(model(opts), P.shape, s, reward=P.reward, parametrisation=r.options["parametrisation"])
        assert torch.equal(x0, r.candidates[i:i + 1]), f"candidate {i} not regenerated from its seeds"
    fin = sampling.replay(model(opts), P.shape, r.seeds[r.chosen]["lineage"], seed=3, reward=P.reward,
                          interpolant=opts.get("interpolant", "vp"), parametrisation=r.options["parametrisation"])
    assert torch.equal(fin, r.candidates[r.chosen:r.chosen + 1])
    # JSON-safe summaries
    json.dumps(r.to_json(), allow_nan=False)
    json.dumps(r.summary(), allow_nan=False)
    assert r.summary()["nfe"] == r.nfe and r.to_json()["options"]["method"] == method


@pytest.mark.parametrize("method", ["bon", "noise_search", "sop", "smc", "svdd", "code", "rbf"])
@pytest.mark.parametrize("budget", [7, 23, 64, 101])
def test_never_exceeds_budget(method, budget):
    opts = {"sop": {"k": 1, "n": 1}, "svdd": {"n": 1}, "code": {"n": 1}, "rbf": {"n": 1}}.get(method, {})
    r = run(method, budget=budget, steps=3, **opts)
    assert r.nfe <= budget
    # methods that size themselves from the budget leave less than one unit of work unspent
    unit = {"bon": 3, "smc": 3, "svdd": 3, "code": 3, "rbf": 1, "noise_search": 3 * min(10, budget // 3),
            "sop": 1 * (1 + 4 * 1)}[method]
    assert budget - r.nfe < unit


def test_nfe_accounting_matches_paper_settings():
    """App. D at 500 NFE / 10 steps: BoN 50×10, SVDD and CoDe 2×25×10, SMC 50×10, RBF all 500, SoP 2·(1+4·5)·11."""
    counts = []
    for m in ("bon", "svdd", "code", "smc", "rbf", "sop"):
        r = sampling.search(P.denoise, P.reward, P.shape, method=m, nfe_budget=500)
        counts.append((m, r.nfe))
        o = r.options
        if m in ("bon", "smc"):
            assert o["n"] == 50
        if m in ("svdd", "code"):
            assert (o["n"], o["k"]) == (2, 25)
        if m == "rbf":
            assert (o["n"], o["quota"], o["init_noises"], o["last_level"]) == (2, 22, 25, "hold")
        if m == "sop":
            assert (o["n"], o["k"], o["rounds"], o["ode_steps"]) == (2, 5, 4, 11)
    assert counts == [("bon", 500), ("svdd", 500), ("code", 500), ("smc", 500), ("rbf", 500), ("sop", 462)]


def test_finish_steps_reserved_and_counted():
    """finish_steps: the chosen particle is taken to s = 0 with extra NFEs inside the budget; sharper samples."""
    base = run("svdd", budget=60, steps=5)
    fin = run("svdd", budget=60, steps=5, finish_steps=4)
    assert fin.nfe <= 60 and fin.options["k"] == (60 - 4) // (2 * 5) < base.options["k"] == 60 // (2 * 5)
    assert fin.trace[-1]["step"] == "finish" and fin.trace[-1]["finish_steps"] == 4
    assert fin.nfe - fin.trace[-2]["nfe"] == 4
    # finishing moves the blurry x0̂ at s_{M−1} onto the data: higher data log-likelihood on average
    lp_base, lp_fin = [], []
    for seed in range(6):
        b = run("bon", budget=20, steps=5, seed=seed, n=4)
        f = run("bon", budget=24, steps=5, seed=seed, n=4, finish_steps=4)
        assert torch.equal(b.candidates, f.candidates)
        lp_base.append(float(P.gm.log_prob(b.sample)))
        lp_fin.append(float(P.gm.log_prob(f.sample)))
    assert sum(lp_fin) / 6 > sum(lp_base) / 6 + 0.5
    with pytest.raises(ValueError, match="finish_steps"):
        run("bon", budget=8, steps=5, finish_steps=4)
    with pytest.raises(ValueError, match="reserved for finish_steps"):
        run("svdd", budget=20, steps=5, finish_steps=2, k=2)


def test_callback_events_and_cancel():
    events = []
    r = run("rbf", budget=40, steps=4, max_batch=1, callback=events.append)
    assert len(events) == 40 and [e["nfe"] for e in events] == list(range(1, 41))
    e = events[-1]
    assert e["budget"] == 40 and e["best_x0"].shape == (1, *P.shape) and isinstance(e["step"], int)
    assert e["best_reward"] == max(ev["best_reward"] for ev in events) == float(r.candidate_rewards.max())

    class Cancel(Exception):
        pass

    calls = {"denoise": 0}

    def denoise(x, t):
        calls["denoise"] += x.shape[0]
        return P.denoise(x, t)

    def cancel_at_25(ev):
        if ev["nfe"] >= 25:
            raise Cancel

    with pytest.raises(Cancel):
        sampling.search(denoise, P.reward, P.shape, method="svdd", nfe_budget=200, steps=5, max_batch=4,
                        callback=cancel_at_25)
    assert 25 <= calls["denoise"] < 25 + 4, "search did not stop within one batch of the cancel"


def test_non_finite_rewards_are_minus_inf_with_warning():
    def reward(x0):
        r = P.reward(x0)
        r[1::3] = float("nan")   # row 0 stays finite: a one-row call (RBF's last draws) always has a score
        r[2::5] = float("inf")
        return r

    for method, opts in [("smc", {}), ("svdd", {}), ("rbf", {}), ("sop", {"k": 2}), ("smc", {"potential": "max"})]:
        r = sampling.search(P.denoise, reward, P.shape, method=method, nfe_budget=60, steps=5, **opts)
        assert r.warnings and "non-finite" in r.warnings[0]
        assert any(e.get("event") == "warning" for e in r.trace)
        assert not torch.isnan(r.candidate_rewards).any() and not torch.isposinf(r.candidate_rewards).any()
        assert all(not (isinstance(e.get("ess"), float) and math.isnan(e["ess"])) for e in r.trace)
        json.dumps(r.to_json(), allow_nan=False)
    # all rewards non-finite: nothing to choose from, so the search fails and names the reward (issue 11 item 9)
    def nan_reward(x0):
        return torch.full((x0.shape[0],), float("nan"))
    for method in ("smc", "bon", "rbf"):
        with pytest.raises(ValueError, match="'nan_reward' gave no finite score"):
            sampling.search(P.denoise, nan_reward, P.shape, method=method, nfe_budget=30, steps=3)
    one_finite = sampling.search(P.denoise, lambda x0: torch.where(x0.flatten(1)[:, 0] > 0, float("nan"), 0.0), P.shape,
                                 method="bon", nfe_budget=30, steps=3)
    assert torch.isfinite(one_finite.candidate_rewards).any()   # one finite score is enough to choose


@pytest.mark.parametrize("kwargs,match", [
    ({"method": "bon", "nfe_budget": 4, "steps": 5}, "smaller than one pass"),
    ({"method": "rbf", "nfe_budget": 10, "steps": 0}, "steps must be an integer ≥ 1"),
    ({"method": "bogus", "nfe_budget": 10}, "unknown method 'bogus'"),
    ({"method": "svdd", "nfe_budget": 50, "kk": 3},
     r"unknown option\(s\) kk for method 'svdd'; its options are n, k, beta"),
    ({"method": "bon", "nfe_budget": 50, "max_batch": 0}, "max_batch"),
    ({"method": "svdd", "nfe_budget": 15, "steps": 10}, r"n·k·steps = 2·1·10 = 20 NFE; raise nfe_budget"),
    ({"method": "svdd", "nfe_budget": 100, "steps": 10, "k": 6}, "= 120 NFE"),
    ({"method": "rbf", "nfe_budget": 60, "steps": 10, "init_noises": 25}, r"n·\(init_noises \+ steps\)"),
    ({"method": "rbf", "nfe_budget": 60, "last_level": "x"}, "last_level"),
    ({"method": "smc", "nfe_budget": 60, "beta": 0}, "beta"),
    ({"method": "smc", "nfe_budget": 60, "potential": "x"}, "potential"),
    ({"method": "sop", "nfe_budget": 60, "delta_b": 0.5}, "delta_f < delta_b"),
    ({"method": "sop", "nfe_budget": 60, "guidance_scale": 1.0, "k": 1}, "guidance_scale is not supported"),
    ({"method": "dps", "nfe_budget": 60}, "guidance_scale > 0"),
    ({"method": "bon", "nfe_budget": 60, "guidance_scale": 1.0, "sde": False}, "set sde=True"),
    ({"method": "bon", "nfe_budget": 60, "nfe_budget_": 1}, "unknown option"),
    ({"method": "bon", "nfe_budget": 0}, "nfe_budget must be a positive integer"),
    ({"method": "bon", "nfe_budget": 60, "grid": "x"}, "unknown grid"),
    ({"method": "bon", "nfe_budget": 60, "diffusion": "x"}, "option .diffusion. must be one of .square."),
    ({"method": "bon", "nfe_budget": 60, "parametrisation": "ve", "interpolant": "linear"}, "needs α"),
])
def test_bad_input_errors_name_the_fix(kwargs, match):
    kw = {"steps": 5, **kwargs}
    with pytest.raises(ValueError, match=match):
        sampling.search(P.denoise, P.reward, P.shape, **kw)


def test_bad_reward_outputs():
    with pytest.raises(ValueError, match="one value per row"):
        sampling.search(P.denoise, lambda x0: torch.zeros(x0.shape[0], 2), P.shape, method="svdd", nfe_budget=40,
                        steps=4)
    with pytest.raises(ValueError, match="differentiable reward"):
        sampling.search(P.denoise, lambda x0: P.reward(x0.detach()), P.shape, method="dps", nfe_budget=10, steps=5,
                        guidance_scale=1.0)


def test_noise_is_keyed_by_particle_not_batch():
    """Two methods that draw the same (particle id, step) keys produce the same particles: BoN's trajectories are
    SMC's when SMC never resamples (β = ∞), whatever the batch size."""
    bon = run("bon", budget=40, steps=4, max_batch=3)
    smc = run("smc", budget=40, steps=4, beta=math.inf, max_batch=7)
    assert torch.equal(bon.candidates, smc.candidates)
    assert not any(e.get("resampled") for e in smc.trace)


def _script(levels):
    vals = [v for lv in levels for v in lv]

    def reward(x0):
        out = torch.tensor(vals[:x0.shape[0]], dtype=torch.float64)
        del vals[:x0.shape[0]]
        return out
    return reward


def _ess(logw):
    w = torch.softmax(torch.tensor(logw, dtype=torch.float64), 0)
    return float(1 / (w * w).sum())


@pytest.mark.parametrize("potential", ["diff", "add", "max"])
def test_smc_potentials_on_scripted_rewards(potential):
    """Weights exp(Σ log G): diff → r_t/β, add → Σ r/β, max → running max/β (threshold 0: no resampling)."""
    r0, r1, r2 = [0.0, 0.5, 1.0, 0.2], [1.0, 0.5, 0.0, 0.2], [0.1, 0.2, 0.3, 0.4]
    b = 0.5
    res = sampling.search(P.denoise, _script([r0, r1, r2]), P.shape, method="smc", nfe_budget=12, steps=3, n=4,
                          beta=b, ess_threshold=0.0, potential=potential)
    lw = {"diff": [r0, r1, r2],
          "add": [r0, [a + c for a, c in zip(r0, r1)], [a + c + d for a, c, d in zip(r0, r1, r2)]],
          "max": [r0, [max(a, c) for a, c in zip(r0, r1)], [max(a, c, d) for a, c, d in zip(r0, r1, r2)]]}[potential]
    ess = [e["ess"] for e in res.trace if "ess" in e]
    assert ess == pytest.approx([_ess([v / b for v in level]) for level in lw], rel=1e-12)
    assert res.candidate_rewards.tolist() == r2 and res.chosen == 3


def test_smc_resamples_by_weight():
    """One particle with overwhelming weight: multinomial resampling copies it into every slot."""
    res = sampling.search(P.denoise, _script([[0, 0, 5.0, 0], [0.1, 0.2, 0.3, 0.4]]), P.shape, method="smc",
                          nfe_budget=8, steps=2, n=4, beta=0.1)
    first = [e for e in res.trace if "ess" in e][0]
    assert first["resampled"] and first["survivors"] == 1
    assert {tuple(s["lineage"][0]) for s in res.seeds} == {("noise", sampling.search_core.pid(2, 0), 0, 1.0)}
    # the slots still draw their own SDE noise afterwards: four distinct candidates
    assert len({tuple(c.tolist()) for c in res.candidates}) == 4


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float64])
def test_model_dtype(dtype):
    """A half-precision model gets inputs in its dtype while particles and SDE maths stay in float32: results are
    still independent of max_batch and replayable; outputs come back in the requested dtype."""
    calls = []

    def denoise(x, t):
        calls.append(x.dtype)
        return P.denoise(x, t)

    for method, opts in [("svdd", {"guidance_scale": 100.0}), ("noise_search", {}), ("code", {"finish_steps": 2})]:
        a = sampling.search(denoise, P.reward, P.shape, method=method, nfe_budget=60, steps=5, dtype=dtype, **opts)
        b = sampling.search(denoise, P.reward, P.shape, method=method, nfe_budget=60, steps=5, dtype=dtype,
                            max_batch=3, **opts)
        assert same(a, b) and a.sample.dtype == a.candidates.dtype == dtype
        for i in (0, a.chosen):
            assert torch.equal(sampling.replay(denoise, P.shape, a.seeds[i], reward=P.reward, dtype=dtype),
                               a.candidates[i:i + 1])
    assert set(calls) == {dtype}


def test_no_autograd_graph_is_kept():
    """The search runs under no_grad (guidance builds a graph per batch only): a model with trainable weights
    returns tensors without history."""
    w = torch.ones((), requires_grad=True)
    for opts in ({}, {"guidance_scale": 10.0}):
        r = sampling.search(lambda x, t: P.denoise(x, t) * w, P.reward, P.shape, method="svdd", nfe_budget=40,
                            steps=4, **opts)
        assert not r.sample.requires_grad and not r.candidates.requires_grad and w.grad is None
