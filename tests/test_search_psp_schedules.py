"""Progressive Seed Pruning and the SMC particle/temperature schedules (issue 12, items 1, 2 and 5).

Budgets, batching invariance, determinism and replay on the analytic Gaussian-mixture flow
(bench/search_problems.py); the pruning and resampling rules on scripted rewards (the reward ignores its input and
returns the next values of a script); direction checks over fixed seeds with the statistic stated in each test."""
import json
import math

import pytest
import torch

import sampling
from bench.search_problems import RareModeProblem
from sampling.search_core import pid
from search_helpers import same, Script, stable

P = RareModeProblem(dim=3)

CASES = [
    ("psp", {}),
    ("psp", {"n": 3, "prune_at": (0.4, 0.8)}),
    ("psp", {"prune_at": (0.1, 0.2), "finish_steps": 2}),
    ("psp", {"guidance_scale": 300.0}),
    ("smc", {"particle_schedule": "funnel"}),
    ("smc", {"particle_schedule": "funnel", "final_particles": 1, "potential": "max"}),
    ("smc", {"temperature_schedule": "linear"}),
    ("smc", {"temperature_schedule": "increasing", "potential": "add", "ess_threshold": 0.5}),
    ("smc", {"particle_schedule": "funnel", "temperature_schedule": "increasing", "n": 10, "final_particles": 2}),
]
IDS = [f"{m}-{'-'.join(f'{k}={v}' for k, v in o.items()) or 'default'}" for m, o in CASES]


def run(method, budget=60, steps=5, seed=3, max_batch=None, reward=None, **opts):
    return sampling.search(P.denoise, reward or P.reward, P.shape, method=method, nfe_budget=budget, steps=steps,
                           seed=seed, max_batch=max_batch, **opts)


def slots(res):
    """Slot (pid >> 32) of the initial noise of every candidate."""
    return [s["lineage"][0][1] >> 32 for s in res.seeds]


# ---- budgets, batching, determinism, replay ------------------------------------------------------------------
@pytest.mark.parametrize("method,opts", CASES, ids=IDS)
def test_budget_batching_determinism_replay(method, opts):
    r = stable(run, method, opts)
    # the NFE reported is the budget actually spent: Σ particles per level (+ finish_steps), never over budget
    counts = r.options["particle_counts"] if "particle_counts" in r.options else [r.options["n"]] * 5
    assert 0 < r.nfe <= 60 and r.budget == 60
    assert r.nfe == sum(counts) + opts.get("finish_steps", 0) == r.summary()["nfe"]
    assert r.candidates.shape[0] == counts[-1] == len(r.seeds)
    assert r.search_reward == float(r.candidate_rewards.max()) == float(r.candidate_rewards[r.chosen])
    # every candidate (and so the chosen one) is regenerated from its lineage
    for i, s in enumerate(r.seeds):
        x0 = sampling.replay(P.denoise, P.shape, s, reward=P.reward)
        torch.testing.assert_close(x0, r.candidates[i:i + 1], rtol=0, atol=1e-6)
    json.dumps(r.to_json(), allow_nan=False)


@pytest.mark.parametrize("budget,steps", [(7, 3), (23, 3), (64, 3), (101, 3), (40, 10), (500, 10), (333, 7)])
def test_psp_sizes_itself_from_the_budget(budget, steps):
    """N is the largest whose cost 2N·k1 + N·(k2−k1) + ⌈N/2⌉·(M−k2) fits; that cost is exactly the NFE used."""
    r = run("psp", budget=budget, steps=steps)
    n, (k1, k2) = r.options["n"], r.options["prune_levels"]
    cost = lambda m: 2 * m * k1 + m * (k2 - k1) + (m + 1) // 2 * (steps - k2)
    assert r.nfe == cost(n) == sum(sampling.psp_counts(n, steps)) <= budget < cost(n + 1)
    assert r.options["seeds"] == 2 * n and r.candidates.shape[0] == (n + 1) // 2


@pytest.mark.parametrize("budget,steps", [(7, 3), (23, 3), (64, 3), (101, 3), (60, 5), (500, 10), (333, 7)])
def test_funnel_sizes_itself_from_the_budget(budget, steps):
    """Funnel n: the largest with Σ funnel_counts(n, max(1, n//4)) ≤ budget (brute force over every n)."""
    r = run("smc", budget=budget, steps=steps, particle_schedule="funnel")
    cost = lambda m: sum(sampling.funnel_counts(m, max(1, m // 4), steps))
    best = max(m for m in range(1, budget + 1) if cost(m) <= budget)
    assert r.options["n"] == best and r.nfe == cost(best) <= budget
    assert r.options["final_particles"] == max(1, best // 4)


def test_psp_levels_and_counts():
    """Prune points are ⌈f·M⌉ levels (at least the fraction f done); the paper's defaults at 10 steps: 3 and 5."""
    assert sampling.psp_levels(10) == (3, 5) and sampling.psp_levels(10, (0.3, 0.6)) == (3, 6)
    assert sampling.psp_levels(5) == (2, 3) and sampling.psp_levels(1) == (1, 1)
    assert sampling.psp_counts(4, 10) == [8, 8, 8, 4, 4, 2, 2, 2, 2, 2]
    assert sampling.psp_counts(5, 10) == [10, 10, 10, 5, 5, 3, 3, 3, 3, 3]   # ⌈N/2⌉ for odd N
    r = sampling.search(P.denoise, P.reward, P.shape, method="psp", nfe_budget=500)
    assert (r.options["n"], r.nfe, r.options["prune_levels"], r.options["prune_at"]) == (47, 496, [3, 5], [0.25, 0.5])
    assert sampling.method_options("psp") == {"n": None, "prune_at": (0.25, 0.5)}


# ---- PSP: direction and identity ---------------------------------------------------------------------------
def test_psp_prunes_the_worst_keeps_the_best():
    """Scripted: at the first prune slot k has reward k → the survivors are exactly the top N slots; at the second
    the reward is −slot → the lower half of those survive; the final candidates are those trajectories."""
    n, steps = 6, 10                                    # prune after levels 3 and 5: 12 → 6 → 3
    script = Script(list(range(2 * n)) + [-k for k in range(n, 2 * n)] + [0.1, 0.3, 0.2])
    r = run("psp", budget=200, steps=steps, reward=script, n=n)
    prunes = [e for e in r.trace if "kept" in e]
    assert [(e["step"], e["particles"]) for e in prunes] == [(2, 12), (4, 6)]
    assert prunes[0]["kept"] == list(range(n, 2 * n)) and prunes[0]["pruned"] == list(range(n))
    assert prunes[1]["kept"] == [6, 7, 8] and prunes[1]["pruned"] == [9, 10, 11]
    assert slots(r) == [6, 7, 8] and r.chosen == 1 and r.reward == 0.3
    # rewards are computed only where they are used: the two prune levels and the last level
    assert script.calls == [12, 6, 3] and r.nfe == 12 * 3 + 6 * 2 + 3 * 5


def test_psp_ties_go_to_the_lower_particle_id():
    script = Script([1.0] * 8 + [0.0, 2.0, 2.0, 0.0] + [0.5, 0.5])
    r = run("psp", budget=200, steps=10, reward=script, n=4)
    prunes = [e for e in r.trace if "kept" in e]
    assert prunes[0]["kept"] == [0, 1, 2, 3] and prunes[1]["kept"] == [1, 2]
    assert slots(r) == [1, 2] and r.chosen == 0


def test_psp_on_the_analytic_problem_keeps_the_top_rewards():
    """Real rewards: at each prune every kept reward ≥ every pruned one (rewards logged from the reward calls)."""
    for seed in range(4):
        calls = []

        def reward(x0):
            r = P.reward(x0)
            calls.append(r.tolist())
            return r

        r = run("psp", budget=200, steps=10, seed=seed, reward=reward)
        prunes = [e for e in r.trace if "kept" in e]
        for e, rs in zip(prunes, calls):
            slots_now = sorted(e["kept"] + e["pruned"])
            by_slot = dict(zip(slots_now, rs))
            assert min(by_slot[k] for k in e["kept"]) >= max(by_slot[k] for k in e["pruned"])
            assert len(e["kept"]) == len(e["pruned"]) or len(e["kept"]) == (len(slots_now) + 1) // 2


def test_psp_survivors_are_the_bon_trajectories_of_their_seeds():
    """A survivor draws its own noise keys to the end: its candidate is BoN's candidate of the same slot."""
    for sde, prune_at in ((True, (0.25, 0.5)), (False, (0.25, 0.5)), (True, (0.5, 0.9))):
        r = run("psp", budget=200, steps=10, n=6, sde=sde, prune_at=prune_at)
        bon = run("bon", budget=200, steps=10, n=12, sde=sde)
        assert torch.equal(r.candidates, bon.candidates[slots(r)])


# ---- SMC defaults unchanged --------------------------------------------------------------------------------
def _ref_log_increment(potential, r, prev, beta):
    first = ~torch.isfinite(prev)
    base = torch.where(first, torch.zeros_like(prev), prev)
    if potential == "diff":
        inc = torch.where(first, r, r - base) / beta
    elif potential == "max":
        inc = torch.where(first, r, torch.maximum(r, base) - base) / beta
    else:
        inc = r / beta
    return torch.where(torch.isfinite(r), torch.nan_to_num(inc, nan=0.0), torch.full_like(inc, -math.inf))


def _ref_ess(logw):
    logw = torch.nan_to_num(logw, nan=-math.inf)
    if torch.isneginf(logw).all():
        logw = torch.zeros_like(logw)
    w = torch.softmax(logw, 0)
    return w, float(1.0 / (w * w).sum())


def _ref_smc(run, n=None, beta=0.1, ess_threshold=1.0, potential="diff"):
    """Frozen copy of the SMC loop before the schedules were added (sampling/search_methods.py at 87a6bc3)."""
    n = run.search_budget // run.M if n is None else n
    run.resolved.update(n=n, beta=beta, ess_threshold=ess_threshold, potential=potential)
    ids = [pid(i, 0) for i in range(n)]
    parts, logw = run.prior(ids, 0), torch.zeros(n, dtype=torch.float64)
    prev = torch.full((n,), -math.inf, dtype=torch.float64)
    for lv in range(run.M):
        if lv:
            parts = run.step(parts, ids)
        cur = parts.r if potential != "max" else torch.maximum(parts.r, prev)
        logw = logw + _ref_log_increment(potential, parts.r, prev, beta)
        w, ess = _ref_ess(logw)
        resample = lv < run.M - 1 and ess < ess_threshold * n * (1 - 1e-9)
        if resample:
            cdf = torch.cumsum(w, 0)
            idx = torch.searchsorted(cdf, run.uniforms(len(w), -1, lv) * cdf[-1]).clamp_(max=len(w) - 1)
            parts, cur, logw = parts.take(idx), cur[idx], torch.zeros(n, dtype=torch.float64)
        prev = cur
        run.record(step=lv, s=run.grid[lv], ess=ess, resampled=resample,
                   survivors=len(set(idx.tolist())) if resample else n)
    return parts


# recorded with the code before this change: RareModeProblem(dim=3), nfe_budget=60, steps=5, seed=3, smc defaults
GOLDEN_SLOTS = [[1, 3, 10, 3, 0], [3, 8, 0, 11, 1], [3, 8, 2, 5, 2], [11, 0, 3, 0, 3], [3, 8, 0, 11, 4],
                [1, 3, 10, 3, 5], [3, 8, 0, 11, 6], [3, 11, 8, 7, 7], [1, 3, 10, 3, 8], [3, 8, 2, 10, 9],
                [4, 1, 4, 1, 10], [11, 0, 9, 8, 11]]
GOLDEN_REWARDS = [0.03012337361943752, 0.06175032051688776, 0.06300744191827484, 0.06801685277543983,
                  0.0752827154384617, 0.05200583729146225, 0.07355656517766787, 0.04451946422344086,
                  0.06294641270988231, 0.061643924039071527, 0.07245661142164073, 0.044686077146334255]


@pytest.mark.parametrize("opts", [{}, {"beta": 0.01, "potential": "max", "ess_threshold": 0.5},
                                  {"potential": "add", "beta": 0.02}, {"n": 7, "guidance_scale": 300.0}],
                         ids=["default", "max", "add", "guided"])
def test_smc_defaults_are_bit_identical_to_before(opts, monkeypatch):
    monkeypatch.setitem(sampling.METHODS, "smc_ref", _ref_smc)
    new = run("smc", **opts)
    ref = run("smc_ref", **opts)
    explicit = run("smc", particle_schedule="constant", temperature_schedule="constant", **opts)
    for r in (new, explicit):
        assert same(r, ref) and r.trace == ref.trace
    assert new.options["particle_schedule"] == new.options["temperature_schedule"] == "constant"
    if not opts:
        assert [[op[1] >> 32 for op in s["lineage"]] for s in new.seeds] == GOLDEN_SLOTS
        assert new.candidate_rewards.tolist() == pytest.approx(GOLDEN_REWARDS, rel=1e-12, abs=0)
        assert new.chosen == 4 and new.nfe == 60


def test_degenerate_schedules_reduce_to_the_constant_smc():
    """A funnel with final_particles = n is the constant schedule; β = ∞ with any temperature schedule is BoN."""
    assert same(run("smc", n=12), run("smc", n=12, particle_schedule="funnel", final_particles=12))
    bon = run("bon", budget=40, steps=4, max_batch=3)
    for ts in ("linear", "increasing"):
        smc = run("smc", budget=40, steps=4, beta=math.inf, temperature_schedule=ts)
        assert torch.equal(bon.candidates, smc.candidates) and not any(e.get("resampled") for e in smc.trace)


# ---- funnel ------------------------------------------------------------------------------------------------
def test_funnel_keeps_the_stated_particle_counts():
    """n = 12 → final 3 over 5 steps: n_ℓ = 12 − ⌊9ℓ/4 + ½⌋ = 12, 10, 7, 5, 3; resampled down at every drop."""
    assert sampling.funnel_counts(12, 3, 5) == [12, 10, 7, 5, 3] and sampling.funnel_counts(7, 2, 1) == [7]
    assert sampling.funnel_counts(40, 10, 10) == [40, 37, 33, 30, 27, 23, 20, 17, 13, 10]
    for mb in (None, 1):
        calls = []

        def reward(x0):
            calls.append(x0.shape[0])
            return P.reward(x0)

        r = run("smc", budget=60, steps=5, n=12, particle_schedule="funnel", max_batch=mb, reward=reward,
                ess_threshold=0.0)
        lv = [e for e in r.trace if "ess" in e]
        assert [e["particles"] for e in lv] == [12, 10, 7, 5, 3]
        assert [e["next_particles"] for e in lv] == [10, 7, 5, 3, 3]
        assert [e["resampled"] for e in lv] == [True] * 4 + [False]   # count drops force it (τ = 0 here)
        assert all(e["survivors"] <= e["next_particles"] for e in lv[:4])
        assert r.nfe == 37 and r.candidates.shape[0] == 3 and r.options["final_particles"] == 3
        assert sum(calls) == 37 and (mb is None or set(calls) == {1})
    # the default final count is max(1, n//4)
    assert run("smc", n=3, particle_schedule="funnel").options["particle_counts"] == [3, 2, 2, 1, 1]


# ---- temperature -------------------------------------------------------------------------------------------
def _ess_of(logw):
    w = torch.softmax(torch.tensor(logw, dtype=torch.float64), 0)
    return float(1 / (w * w).sum())


@pytest.mark.parametrize("schedule", ["linear", "increasing"])
@pytest.mark.parametrize("potential", ["diff", "add", "max"])
def test_tempered_weights_on_scripted_rewards(schedule, potential):
    """β_ℓ = β/κ_ℓ, κ = (ℓ+1)/M or its square; log-weights (no resampling, τ = 0): diff telescopes to r_t/β_t,
    max to (running max)/β_t, add is Σ r_ℓ/β_ℓ."""
    r0, r1, r2 = [0.0, 0.5, 1.0, 0.2], [1.0, 0.5, 0.0, 0.2], [0.1, 0.2, 0.3, 0.4]
    b, M = 0.5, 3
    kappa = [((lv + 1) / M) ** (1 if schedule == "linear" else 2) for lv in range(M)]
    betas = [b / k for k in kappa]
    res = run("smc", budget=12, steps=M, n=4, beta=b, ess_threshold=0.0, potential=potential,
              temperature_schedule=schedule, reward=Script(r0 + r1 + r2))
    assert [e["beta"] for e in res.trace if "ess" in e] == pytest.approx(betas, rel=1e-15)
    assert sampling.smc_temperatures(schedule, b, M)[-1] == b
    mx1 = [max(a, c) for a, c in zip(r0, r1)]
    lw = {"diff": [[v / betas[t] for v in rt] for t, rt in enumerate((r0, r1, r2))],
          "add": [[v / betas[0] for v in r0], [a / betas[0] + c / betas[1] for a, c in zip(r0, r1)],
                  [a / betas[0] + c / betas[1] + d / betas[2] for a, c, d in zip(r0, r1, r2)]],
          "max": [[v / betas[0] for v in r0], [v / betas[1] for v in mx1],
                  [max(a, d) / betas[2] for a, d in zip(mx1, r2)]]}[potential]
    ess = [e["ess"] for e in res.trace if "ess" in e]
    assert ess == pytest.approx([_ess_of(level) for level in lw], rel=1e-9)
    assert res.candidate_rewards.tolist() == r2 and res.chosen == 3


def _mean_distinct_ancestors(seeds=range(12), **opts):
    """Statistic: distinct ancestors per resampling level (levels 0 … M−2; n when a level does not resample),
    averaged over levels and seeds. n = 32, 5 steps, τ = 1 (resample whenever ESS < n), reward = x0̂₁ ∈ ±4."""
    reward = lambda x0: x0[:, 0].to(torch.float64)
    vals = []
    for seed in seeds:
        r = run("smc", budget=160, steps=5, n=32, seed=seed, reward=reward, **opts)
        vals += [e["survivors"] for e in r.trace if "ess" in e][:-1]
    return sum(vals) / len(vals)


def test_colder_temperature_concentrates_resampling():
    """Weights ∝ exp(r/β): a colder (smaller) temperature β — a larger inverse temperature 1/β — puts the mass on
    fewer particles, so fewer distinct ancestors survive resampling. Measured: 20.3, 17.5, 12.6, 5.6 of 32."""
    stats = [_mean_distinct_ancestors(beta=b) for b in (1.0, 0.3, 0.1, 0.03)]
    assert all(a > c + 1.0 for a, c in zip(stats, stats[1:])), stats
    assert stats[0] < 32 * (1 - (31 / 32) ** 32) + 1.0   # ≈ uniform multinomial (20.5) when hot


def test_tempered_schedules_resample_early_levels_less():
    """The schedules down-weight early rewards (same final β = 0.1): more distinct ancestors than constant, and
    'increasing' (κ²) more than 'linear' (κ). Measured: 12.6 < 15.3 < 15.9 of 32."""
    const, lin, inc = (_mean_distinct_ancestors(beta=0.1, temperature_schedule=ts)
                       for ts in ("constant", "linear", "increasing"))
    assert const + 1.5 < lin < inc, (const, lin, inc)


# ---- option validation -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,match", [
    ({"method": "psp", "prune_at": (0.5, 0.25)},
     r"psp: option 'prune_at' must be two increasing fractions in \(0, 1\), e.g. \[0.25, 0.5\]"),
    ({"method": "psp", "prune_at": (0.0, 0.5)}, "prune_at' must be two increasing fractions"),
    ({"method": "psp", "prune_at": (0.25, 1.0)}, "prune_at' must be two increasing fractions"),
    ({"method": "psp", "prune_at": (0.25,)}, r"e.g. \[0.25, 0.5\]"),
    ({"method": "psp", "prune_at": "early"}, "prune_at' must be two increasing fractions"),
    ({"method": "psp", "n": 0}, r"psp: option 'n' must be an integer in \[1, 100000\], or null"),
    ({"method": "psp", "n": 2.5}, r"psp: option 'n' must be an integer.*got 2.5"),
    ({"method": "psp", "n": 10}, r"2·10·2 \+ 10·1 \+ 5·2 = 60.*raise nfe_budget, lower steps, or lower n"),
    ({"method": "psp", "nfe_budget": 6}, r"smaller than 2n·k1 \+ n·\(k2 − k1\) \+ ⌈n/2⌉·\(steps − k2\)"),
    ({"method": "smc", "particle_schedule": "cone"},
     "smc: option 'particle_schedule' must be one of 'constant', 'funnel', 'ramp'.*got 'cone'"),
    ({"method": "smc", "temperature_schedule": "cold"},
     "option 'temperature_schedule' must be one of 'constant', 'linear', 'increasing'.*got 'cold'"),
    ({"method": "smc", "final_particles": 3},
     "final_particles applies to particle_schedule='funnel' or 'ramp' only; set"),
    ({"method": "smc", "particle_schedule": "funnel", "final_particles": 0},
     r"option 'final_particles' must be an integer in \[1, 100000\]"),
    ({"method": "smc", "particle_schedule": "funnel", "n": 4, "final_particles": 5},
     r"final_particles must be ≤ n = 4 \(the funnel only shrinks\), got 5; lower final_particles or raise n"),
    ({"method": "smc", "particle_schedule": "funnel", "final_particles": 9},
     "final_particles·steps = 9·5 = 45 NFE; raise nfe_budget, lower steps, or lower final_particles"),
    ({"method": "smc", "particle_schedule": "funnel", "n": 20, "nfe_budget": 60},
     r"funnel's Σ particles per step = 20 \+ 16 \+ 12 \+ 9 \+ 5 = 62 NFE; raise nfe_budget"),
])
def test_bad_options_error_before_any_evaluation(kwargs, match):
    def denoise(x, t):
        raise AssertionError("evaluated before the options were checked")

    kw = {"nfe_budget": 40, "steps": 5, **kwargs}
    with pytest.raises(ValueError, match=match):
        sampling.search(denoise, P.reward, P.shape, **kw)
