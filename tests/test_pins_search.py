"""Direction pins for the search core and methods (issue 11: mutants that survived the suite).

Each test scripts a tiny denoiser and/or reward, so the rule under test decides one observable thing: which
particle survives, which clock g is taken at, which pivot a noise search keeps. Fixed seeds; tolerances stated."""
import math

import pytest
import torch

import sampling
from sampling.search_core import Run, perturb, pid

SHAPE = (3,)


def half(x, t):
    """A scripted linear denoiser x0̂ = x/2 (any t): cheap, deterministic, and every draw gets its own x0̂."""
    return 0.5 * x


class Log:
    """Reward r(x0̂) = x0̂[:, 0] + offset that records every batch it scores (float64 CPU copies)."""

    def __init__(self, fn=None):
        self.calls, self.fn = [], fn or (lambda x0: x0[:, 0].double())

    def __call__(self, x0):
        r = self.fn(x0)
        self.calls.append(r.detach().clone())
        return r


def run_of(method="bon", budget=40, steps=4, seed=0, reward=None, max_batch=None, **kw):
    return Run(half, reward or Log(), SHAPE, method=method, nfe_budget=budget, search_budget=budget, steps=steps,
               interpolant="linear", sde=True, grid="uniform", seed=seed, max_batch=max_batch, callback=None, **kw)


# ---- the SDE step: g at the step's start clock ----------------------------------------------------------------
def _em_linear(x, x0, s, s_next, g, z):
    """The Euler–Maruyama step of sde.py written out for the linear path (α = 1 − s, σ = s, α' = −1, σ' = 1)."""
    dt = s - s_next
    eps = (x - (1 - s) * x0) / s
    return x - dt * (-1.0 * x0 + 1.0 * eps) - dt * 0.5 * g * g * eps / s + g * math.sqrt(dt) * z


def test_sample_on_grid_takes_g_at_the_current_clock():
    x = torch.tensor([[1.0, -2.0, 0.5]], dtype=torch.float64)
    z = torch.tensor([[0.3, 0.1, -0.7]], dtype=torch.float64)
    seen = []
    sampling.sample_on_grid(half, x.clone(), [0.8, 0.5, 0.2, 0.0], interpolant="linear", sde=True,
                            noise=lambda i, xb: z, callback=lambda d: seen.append(d["x"].clone()))
    x0 = 0.5 * (x / 1.0)   # clean_estimate: x_t = x̄/c with c = α + σ = 1 on the linear path
    want = _em_linear(x, x0, 0.8, 0.5, 3 * 0.8 ** 2, z)
    torch.testing.assert_close(seen[1], want, rtol=1e-12, atol=1e-12)


def test_run_step_takes_g_at_the_parent_clock_and_records_it():
    run = run_of(steps=4)
    parents = run.prior([pid(0, 0), pid(1, 0)], 0)
    kids = run.step(parents, [pid(0, 0), pid(1, 0)])
    s, s_next = run.grid[0], run.grid[1]
    g = 3 * s * s
    z = run.noise([pid(0, 0), pid(1, 0)], 1)
    want = _em_linear(parents.x.double(), parents.x0.double(), s, s_next, g, z.double())
    torch.testing.assert_close(kids.x.double(), want, rtol=1e-5, atol=1e-6)
    assert [op[5] for lin in kids.lineage for op in lin if op[0] == "sde"] == pytest.approx([g, g], rel=1e-12)


@pytest.mark.parametrize("name,f", [("square", lambda s: s * s), ("constant", lambda s: 1.0), ("linear", lambda s: s),
                                    ("sin", lambda s: math.sin(math.pi * s / 2)),
                                    ("exp", lambda s: math.exp(-((s - 1) / 0.1) ** 2)),
                                    ("tan", lambda s: math.tan(math.pi * min(s, 0.95) / 2)),
                                    ("clipping", lambda s: max(0.0, 2 * s - 1)), ("ode", lambda s: 0.0)])
def test_diffusion_coefficients(name, f):
    for s in (0.1, 0.6, 0.97):
        want = 0.0 if name == "ode" else 2.5 * f(s)
        assert sampling.diffusion_coefficient(name, s, 2.5) == pytest.approx(want, rel=1e-12, abs=1e-15)
    ip = sampling.get_interpolant("vp")
    assert sampling.diffusion_coefficient("sigma", 0.3, 2.0, ip) == pytest.approx(2.0 * float(ip.sigma(0.3)), rel=1e-12)


# ---- best-so-far, uniforms, perturbation -----------------------------------------------------------------------
def test_best_so_far_follows_every_gain_however_small():
    """Rewards rising by 1e-6 per evaluation: the best-so-far (callback and trace) is always the latest."""
    events = []
    count = iter(range(1000))
    reward = Log(lambda x0: torch.tensor([1e-6 * next(count) for _ in range(x0.shape[0])], dtype=torch.float64))
    run = Run(half, reward, SHAPE, method="bon", nfe_budget=20, search_budget=20, steps=2, interpolant="linear",
              sde=True, grid="uniform", seed=0, max_batch=1, callback=events.append)
    run.evaluate(run.noise([pid(i, 0) for i in range(5)], 0), 1.0, 0, [()] * 5)
    assert [e["best_reward"] for e in events] == pytest.approx([1e-6 * i for i in range(5)], abs=1e-12)
    assert run.best_r == pytest.approx(4e-6, abs=1e-12)
    torch.testing.assert_close(events[-1]["best_x0"], events[-1]["x0"])


def test_best_so_far_ignores_a_worse_batch():
    events = []
    vals = iter([[0.5, 0.9], [0.2, 0.1]])
    reward = lambda x0: torch.tensor(next(vals), dtype=torch.float64)
    run = Run(half, reward, SHAPE, method="bon", nfe_budget=20, search_budget=20, steps=2, interpolant="linear",
              sde=True, grid="uniform", seed=0, max_batch=2, callback=events.append)
    run.evaluate(run.noise([pid(i, 0) for i in range(4)], 0), 1.0, 0, [()] * 4)
    assert [e["best_reward"] for e in events] == [0.9, 0.9]
    torch.testing.assert_close(events[1]["best_x0"], events[0]["x0"][1:2])


def test_resampling_uniforms_are_uniform_and_the_normal_cdf_of_their_stream():
    run = run_of(seed=11)
    u = run.uniforms(4000, -1, 3)
    z = sampling.particle_noise((4000,), 11, [-1], 3, "cpu", torch.float32)[0].double()
    torch.testing.assert_close(u, torch.special.ndtr(z), rtol=1e-12, atol=1e-12)
    assert bool(((u > 0) & (u < 1)).all())
    assert float(u.mean()) == pytest.approx(0.5, abs=0.02)           # 4000 draws: sd of the mean ≈ 0.0046
    assert float((u < 0.25).double().mean()) == pytest.approx(0.25, abs=0.025)
    assert not torch.equal(u, run.uniforms(4000, -2, 3)) and not torch.equal(u, run.uniforms(4000, -1, 4))


def test_perturbation_is_variance_preserving():
    x, z = torch.tensor([1.0, 2.0]), torch.tensor([1.0, -1.0])
    torch.testing.assert_close(perturb(x, 0.5, z), (x + 0.5 * z) / math.sqrt(1.25))
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(20000, generator=g), torch.randn(20000, generator=g)
    assert float(perturb(a, 2.0, b).var()) == pytest.approx(1.0, abs=0.05)   # (1 + 4)/5; sd of var ≈ 0.01


# ---- noise search: the pivot moves only to strictly better rewards ---------------------------------------------
@pytest.mark.parametrize("seed", range(4))
def test_noise_search_pivot_is_the_best_so_far(seed):
    res = sampling.search(half, lambda x0: x0[:, 0].double(), SHAPE, method="noise_search", nfe_budget=48, steps=2,
                          k=3, radius=0.8, seed=seed, interpolant="linear", grid="uniform")
    rounds = [e for e in res.trace if "pivot_reward" in e]
    assert len(rounds) == 8
    best = -math.inf
    for e in rounds:
        best = max(best, e["round_best"])
        assert e["pivot_reward"] == best
    # every candidate of round q ≥ 1 perturbs the pivot: its lineage starts with the pivot's lineage
    lin = [s["lineage"] for s in res.seeds]
    piv = [max(range(3 * q, 3 * q + 3), key=lambda i: float(res.candidate_rewards[i])) for q in range(8)]
    for q in range(1, 8):
        holder = max(range(q), key=lambda p: (rounds[p]["round_best"], -p))   # first round reaching the max
        for i in range(3 * q, 3 * q + 3):
            assert lin[i][:len(lin[piv[holder]]) - 1] == lin[piv[holder]][:-1]
            assert lin[i][len(lin[piv[holder]]) - 1][0] == "perturb"


def test_noise_search_random_mode_draws_fresh_noises():
    res = sampling.search(half, lambda x0: x0[:, 0].double(), SHAPE, method="noise_search", nfe_budget=24, steps=2,
                          k=3, mode="random", seed=1, interpolant="linear", grid="uniform")
    assert all(s["lineage"][0][0] == "noise" and all(op[0] != "perturb" for op in s["lineage"]) for s in res.seeds)


# ---- SoP and the blockwise methods keep the best -----------------------------------------------------------------
@pytest.mark.parametrize("selection", ["global", "per_parent"])
def test_sop_keeps_the_best_children(selection):
    rw = Log()
    res = sampling.search(half, rw, SHAPE, method="sop", nfe_budget=60, n=2, k=3, ode_steps=1, selection=selection,
                          seed=2, interpolant="linear")
    rounds = [e for e in res.trace if "renoise_to" in e]
    assert rounds and len(rw.calls) == len(rounds)
    for e, kids in zip(rounds, rw.calls):
        if selection == "global":
            want = sorted(kids.tolist(), reverse=True)[:2]
        else:
            want = kids.reshape(2, 3).max(1).values.tolist()
        assert e["rewards"] == want


@pytest.mark.parametrize("method,opts", [("svdd", {}), ("code", {"block": 2})])
def test_blockwise_keeps_each_chains_own_best_child(method, opts):
    rw = Log()
    res = sampling.search(half, rw, SHAPE, method=method, nfe_budget=48, steps=4, n=2, k=6, seed=5,
                          interpolant="linear", **opts)
    picks = [e for e in res.trace if "rewards" in e]
    scored = rw.calls
    assert len(picks) == len(scored)
    for e, r in zip(picks, scored):
        assert e["rewards"] == r.reshape(2, 6).max(1).values.tolist()
    for b, seed in enumerate(res.seeds):   # chain b's lineage holds only chain b's particle ids
        assert {op[1] >> 32 for op in seed["lineage"] if op[0] in ("noise", "sde")} == {b}
    assert res.reward == max(max(e["rewards"]) for e in picks[-1:])


def test_blockwise_beta_samples_but_stays_within_the_chain():
    res = sampling.search(half, Log(), SHAPE, method="svdd", nfe_budget=48, steps=4, n=2, k=6, beta=10.0, seed=1,
                          interpolant="linear")
    for b, seed in enumerate(res.seeds):
        assert {op[1] >> 32 for op in seed["lineage"] if op[0] in ("noise", "sde")} == {b}


def test_best_of_n_returns_the_highest_final_reward():
    rw = Log()
    res = sampling.search(half, rw, SHAPE, method="bon", nfe_budget=24, steps=3, seed=4, interpolant="linear")
    assert len(rw.calls) == 1 and res.candidate_rewards.tolist() == rw.calls[0].tolist()
    assert res.chosen == int(rw.calls[0].argmax()) and res.reward == float(rw.calls[0].max())


# ---- SMC: weights restart from zero after a resampling ---------------------------------------------------------
def _ess(logw):
    w = torch.softmax(logw.double(), 0)
    return float(1 / (w * w).sum())


def test_smc_weights_reset_after_resampling():
    """Potential 'add' (log G = r/β, no dependence on the parents): after a resampling the level's ESS is that of
    its own rewards alone; without one the weights carry over."""
    rw = Log()
    beta = 0.5
    res = sampling.search(half, rw, SHAPE, method="smc", nfe_budget=24, steps=4, n=6, beta=beta, potential="add",
                          ess_threshold=0.9, seed=3, interpolant="linear")
    levels = [e for e in res.trace if "ess" in e]
    assert len(levels) == 4 == len(rw.calls)
    assert levels[0]["ess"] == pytest.approx(_ess(rw.calls[0] / beta), rel=1e-12)
    assert any(e["resampled"] for e in levels[:-1])
    for prev, cur, r in zip(levels, levels[1:], rw.calls[1:]):
        if prev["resampled"]:
            assert cur["ess"] == pytest.approx(_ess(r / beta), rel=1e-12)


def test_smc_resampling_follows_the_weights():
    """Resampling draws ancestors ∝ weight: a particle 10 nats ahead takes (almost) every slot, never a −inf one."""
    vals = iter([[0.0, 1.0, 0.0, -math.inf], [0.1, 0.2, 0.3, 0.4], [0.0, 0.0, 0.0, 0.0]])
    res = sampling.search(half, lambda x0: torch.tensor(next(vals), dtype=torch.float64), SHAPE, method="smc",
                          nfe_budget=12, steps=3, n=4, beta=0.1, seed=0, interpolant="linear")
    first = [e for e in res.trace if "ess" in e][0]
    assert first["resampled"] and first["survivors"] == 1
    assert {s["lineage"][0][1] for s in res.seeds} == {pid(1, 0)}


# ---- RBF: a level may be left after min(min_draws, quota) draws -------------------------------------------------
def test_rbf_min_draws_above_the_quota_still_accepts_after_the_quota():
    res = sampling.search(half, lambda x0: x0[:, 0].double(), SHAPE, method="rbf", nfe_budget=40, steps=4, n=1,
                          init_noises=None, min_draws=1000, last_level="stop", seed=0, interpolant="linear")
    moves = [e for e in res.trace if "accepted" in e and not e.get("final")]
    assert any(e["accepted"] for e in moves)
    for e in moves:
        assert e["draws"] == e["quota"]                   # never before min(min_draws, quota) = quota draws
        assert e["accepted"] == (e["reward"] == e["r_star"])


def test_rbf_accepts_the_first_strict_improvement_and_rolls_the_rest_over():
    res = sampling.search(half, lambda x0: x0[:, 0].double(), SHAPE, method="rbf", nfe_budget=40, steps=4, n=1,
                          init_noises=None, last_level="stop", seed=0, interpolant="linear")
    moves = [e for e in res.trace if "accepted" in e and not e.get("final")]
    assert moves[0]["accepted"] and moves[0]["draws"] == 1 and moves[0]["rolled_over"] == moves[0]["quota"] - 1
    for e, nxt in zip(moves, moves[1:]):
        assert nxt["quota"] == 10 + e["rolled_over"]     # Q = ⌊40/4⌋ = 10 plus the refund
        assert e["rolled_over"] == (e["quota"] - e["draws"] if e["accepted"] else 0)


# ---- draws: categorical picks and multinomial resampling follow their probabilities -----------------------------
def test_categorical_draws_follow_the_softmax_and_survive_dead_rows():
    from sampling.search_methods import _categorical
    run = run_of(seed=2)
    n = 4000
    logits = torch.tensor([[0.0, math.log(3.0)]], dtype=torch.float64).expand(n, 2)
    j = _categorical(run, logits, -2, 0)
    assert float(j.double().mean()) == pytest.approx(0.75, abs=0.03)          # sd ≈ 0.007
    dead = torch.tensor([[-math.inf, -math.inf, -math.inf]], dtype=torch.float64).expand(n, 3)
    counts = torch.bincount(_categorical(run, dead, -2, 1), minlength=3).double() / n
    torch.testing.assert_close(counts, torch.full((3,), 1 / 3, dtype=torch.float64), rtol=0, atol=0.03)
    for row, live in (([math.nan, 0.0], 1), ([0.0, math.nan], 0)):           # NaN is −inf, never drawn
        nan = torch.tensor([row], dtype=torch.float64).expand(n, 2)
        assert bool((_categorical(run, nan, -2, 2) == live).all())


def test_resampling_draws_ancestors_in_proportion_to_weight():
    from sampling.search_methods import _resample_idx
    run = run_of(seed=4)
    w = torch.tensor([0.1, 0.2, 0.0, 0.7], dtype=torch.float64)
    idx = _resample_idx(run, w, 0, 5000)
    freq = torch.bincount(idx, minlength=4).double() / 5000
    torch.testing.assert_close(freq, w, rtol=0, atol=0.025)                   # sd ≤ 0.0065
    assert len(_resample_idx(run, w, 1)) == 4 and int(_resample_idx(run, w, 1).max()) <= 3


def test_smc_does_not_resample_equal_weights():
    res = sampling.search(half, lambda x0: torch.zeros(x0.shape[0], dtype=torch.float64), SHAPE, method="smc",
                          nfe_budget=20, steps=4, n=5, ess_threshold=1.0, seed=0, interpolant="linear")
    levels = [e for e in res.trace if "ess" in e]
    assert [e["resampled"] for e in levels] == [False] * 4
    assert all(e["ess"] == pytest.approx(5.0, rel=1e-12) for e in levels)
    assert sorted(s["lineage"][0][1] for s in res.seeds) == [pid(i, 0) for i in range(5)]


def test_trace_entries_carry_the_linear_time_of_their_clock():
    res = sampling.search(half, lambda x0: x0[:, 0].double(), SHAPE, method="svdd", nfe_budget=24, steps=3, n=2,
                          k=4, seed=0, interpolant="vp")
    ip = sampling.get_interpolant("vp")
    steps = [e for e in res.trace if "rewards" in e]
    assert len(steps) == 3
    for e in steps:
        assert e["t"] == pytest.approx(float(ip.to_linear(e["s"])[0]), rel=1e-12)
        assert e["nfe"] == 8 * (e["step"] + 1)


def test_callback_reports_the_chunk_it_follows():
    events = []
    res = sampling.search(half, lambda x0: x0[:, 0].double(), SHAPE, method="bon", nfe_budget=12, steps=3, seed=0,
                          max_batch=2, callback=events.append, interpolant="linear", grid="uniform")
    assert [e["nfe"] for e in events] == [2, 4, 6, 8, 10, 12]
    assert [e["step"] for e in events] == [0, 0, 1, 1, 2, 2]
    assert [e["s"] for e in events] == pytest.approx([1.0, 1.0, 2 / 3, 2 / 3, 1 / 3, 1 / 3])
    assert all(e["budget"] == 12 and e["method"] == "bon" and e["x0"].shape == (2, 3) for e in events)
    assert events[-1]["best_reward"] == res.reward


# ---- baseline survivors of the mutation run (docs/mutation.md): options, trace fields, replay, error fixes --------
def test_best_of_n_uses_the_given_n_and_reports_options():
    res = sampling.search(half, Log(), SHAPE, method="bon", nfe_budget=40, steps=4, n=3, seed=0, interpolant="linear")
    assert res.candidates.shape[0] == 3 and res.options["n"] == 3 and res.nfe == 12


def test_options_report_every_resolved_setting():
    smc = sampling.search(half, Log(), SHAPE, method="smc", nfe_budget=20, steps=4, n=5, ess_threshold=0.5, seed=0,
                          interpolant="linear")
    assert smc.options["ess_threshold"] == 0.5 and smc.options["n"] == 5 and "resampling" in smc.options
    ns = sampling.search(half, Log(), SHAPE, method="noise_search", nfe_budget=24, steps=2, k=3, seed=0,
                         interpolant="linear")
    assert ns.options["k"] == 3 and ns.options["rounds"] == 4 and ns.options["radius"] == 0.5


def test_noise_search_scores_only_the_last_level_and_traces_it():
    rw = Log()
    res = sampling.search(half, rw, SHAPE, method="noise_search", nfe_budget=24, steps=3, k=2, seed=0,
                          interpolant="linear", grid="uniform")
    assert len(rw.calls) == 4 and all(len(c) == 2 for c in rw.calls)      # 4 rounds · 2 trajectories, scored once
    for e in (e for e in res.trace if "pivot_reward" in e):
        assert e["s"] == pytest.approx(1 / 3) and e["t"] == pytest.approx(1 / 3)


def test_noise_search_candidates_replay_through_their_perturbations():
    res = sampling.search(half, lambda x0: x0[:, 0].double(), SHAPE, method="noise_search", nfe_budget=24, steps=2,
                          k=3, radius=0.7, seed=9, interpolant="linear")
    assert any(op[0] == "perturb" for s in res.seeds for op in s["lineage"])
    for i, s in enumerate(res.seeds):
        torch.testing.assert_close(sampling.replay(half, SHAPE, s), res.candidates[i:i + 1], rtol=1e-5, atol=1e-6)


def test_sop_trace_clock_and_first_segment_level():
    res = sampling.search(half, Log(), SHAPE, method="sop", nfe_budget=80, n=2, k=2, ode_steps=2, seed=1,
                          interpolant="linear")
    rounds = [e for e in res.trace if "renoise_to" in e]
    assert all(isinstance(e["s"], float) and e["t"] == pytest.approx(e["s"]) for e in rounds)   # linear: t = s
    assert rounds[-1]["s"] < rounds[0]["s"]
    # the first ODE segment runs at level 0 (its evaluations are reported as step 0 to the callback)
    events = []
    sampling.search(half, Log(), SHAPE, method="sop", nfe_budget=80, n=2, k=2, ode_steps=2, seed=1,
                    interpolant="linear", callback=events.append)
    assert [e["step"] for e in events[:2]] == [0, 0]


def test_finish_trace_entry_is_at_the_last_finishing_clock():
    res = sampling.search(half, Log(), SHAPE, method="bon", nfe_budget=14, steps=4, finish_steps=2, seed=0,
                          interpolant="linear", grid="uniform")
    fin = [e for e in res.trace if e.get("step") == "finish"][0]
    t0 = 0.25                                           # the last search level of the uniform 4-step grid
    assert fin["s"] == pytest.approx(t0 * (1 - 2 / 3)) and fin["finish_steps"] == 2 and fin["reward"] == res.reward


def test_summary_keys():
    res = sampling.search(half, Log(), SHAPE, method="bon", nfe_budget=8, steps=2, seed=0, interpolant="linear")
    s = res.summary()
    assert s["chosen"] == res.chosen and s["candidate_rewards"] == res.candidate_rewards.tolist()
    assert {"method", "reward", "search_reward", "nfe", "budget", "options", "warnings"} <= set(s)


def test_categorical_dead_rows_are_per_row():
    from sampling.search_methods import _categorical
    run = run_of(seed=0)
    logits = torch.tensor([[-math.inf, -math.inf], [0.0, -math.inf]], dtype=torch.float64).repeat(500, 1)
    j = _categorical(run, logits, -2, 0).reshape(500, 2)
    assert bool((j[:, 1] == 0).all())                          # the live row never draws its −inf entry
    assert 0.4 < float(j[:, 0].double().mean()) < 0.6          # the dead row draws uniformly (sd ≈ 0.022)


@pytest.mark.parametrize("method,opts,fix", [
    ("noise_search", {"k": 20}, "raise nfe_budget, lower steps, or lower k"),
    ("sop", {"n": 1, "k": 1, "ode_steps": 10}, "raise nfe_budget or lower n, k or ode_steps"),
    ("rbf", {"init_noises": 25}, "raise nfe_budget, lower steps, n or init_noises"),
    ("svdd", {"k": 30}, "raise nfe_budget, lower steps, n or k"),
])
def test_budget_errors_name_the_fix(method, opts, fix):
    with pytest.raises(ValueError, match=fix):
        sampling.search(half, Log(), SHAPE, method=method, nfe_budget=40, steps=4, interpolant="linear", **opts)


def test_rbf_init_pick_scores_its_noises_and_traces_r_star():
    rw = Log()
    res = sampling.search(half, rw, SHAPE, method="rbf", nfe_budget=60, steps=4, n=2, init_noises=3, seed=0,
                          interpolant="linear")
    assert len(rw.calls[0]) == 6                               # the K0·N initial noises, one scored batch
    picks = [e for e in res.trace if e.get("step") == 0 and "chain" in e]
    for b, e in enumerate(picks):
        assert e["r_star"] == e["reward"] == max(rw.calls[0][3 * b:3 * b + 3].tolist())


def test_rbf_auto_init_noises_is_used_down_to_one():
    res = sampling.search(half, Log(), SHAPE, method="rbf", nfe_budget=24, steps=4, n=2, seed=0,
                          interpolant="linear")
    assert res.options["init_noises"] == 1                     # min(24 // 20, 24 // 2 − 4) = 1


def test_rbf_refuses_zero_chains():
    with pytest.raises(ValueError, match=r"rbf: .*\bn\b"):
        sampling.search(half, Log(), SHAPE, method="rbf", nfe_budget=40, steps=4, n=0, interpolant="linear")


def test_psp_fit_and_prune_trace():
    rw = Log()
    res = sampling.search(half, rw, SHAPE, method="psp", nfe_budget=40, steps=4, seed=0, interpolant="linear")
    assert sum(res.options["particle_counts"]) <= 40
    assert sum(sampling.psp_counts(res.options["n"] + 1, 4)) > 40          # the largest n that fits
    prunes = [e for e in res.trace if "pruned" in e]
    assert prunes
    assert all(len(e["rewards"]) == len(e["kept"]) for e in prunes)
    with pytest.raises(ValueError, match="prune_at"):
        sampling.search(half, Log(), SHAPE, method="psp", nfe_budget=40, steps=4, prune_at=(0.5, 1.0),
                        interpolant="linear")


def test_unscored_rows_get_minus_inf_one_per_row():
    rw = Log()
    run = run_of(reward=rw)
    p = run.evaluate(run.noise([pid(i, 0) for i in range(5)], 0), 1.0, 0, [()] * 5, score=False)
    assert p.r.tolist() == [-math.inf] * 5 and not rw.calls and run.nfe == 5


def test_run_noise_is_drawn_in_the_working_dtype():
    run = run_of(dtype=torch.float64)
    z = run.noise([pid(0, 0)], 0)
    assert z.dtype == torch.float64
    torch.testing.assert_close(z, sampling.particle_noise(SHAPE, 0, [pid(0, 0)], 0, dtype=torch.float64))
    assert run_of(dtype=torch.bfloat16).noise([pid(0, 0)], 0).dtype == torch.float32


def test_ve_parametrisation_calls_the_model_at_sigma_ve():
    seen = []

    def denoise_ve(x, sigma):
        seen.append(sigma.clone())
        return 0.5 * x
    sampling.search(denoise_ve, Log(), SHAPE, method="bon", nfe_budget=4, steps=2, n=2, parametrisation="ve",
                    interpolant="vp", grid=[0.9, 0.5, 0.0], seed=0)
    ip = sampling.get_interpolant("vp")
    want = float(ip.sigma(0.9) / ip.alpha(0.9))
    assert float(seen[0][0]) == pytest.approx(want, rel=1e-6)


def test_sample_with_a_generator_draws_from_it():
    x = torch.ones(2, 3)
    a = sampling.sample(half, x, interpolant="linear", steps=4, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(123)
    b = sampling.sample(half, x, interpolant="linear", steps=4, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    c = sampling.sample(half, x, interpolant="linear", steps=4, generator=torch.Generator().manual_seed(1))
    assert float((a - c).abs().max()) > 1e-3


def test_one_step_and_custom_grids_are_accepted_and_bad_grids_refused():
    res = sampling.search(half, Log(), SHAPE, method="bon", nfe_budget=3, steps=1, seed=0, interpolant="linear")
    assert res.nfe == 3
    ok = sampling.search(half, Log(), SHAPE, method="bon", nfe_budget=4, steps=2, grid=[0.9, 0.4, 0.0], seed=0,
                         interpolant="linear")
    assert ok.nfe == 4
    for bad in ([0.4, 0.9, 0.0], [0.9, 0.4, 0.1], [1.2, 0.4, 0.0], [0.9, 0.0]):
        with pytest.raises(ValueError, match="a custom grid must be"):
            sampling.search(half, Log(), SHAPE, method="bon", nfe_budget=4, steps=2, grid=bad, interpolant="linear")


def test_systematic_resampling_gives_every_weight_its_share():
    from sampling.search_methods import _resample_idx
    run = run_of(seed=6)
    w = torch.tensor([0.5, 0.25, 0.25], dtype=torch.float64)
    for step in range(5):                        # one uniform, evenly spaced points: ⌊m·w⌋ or ⌈m·w⌉ copies each
        idx = _resample_idx(run, w, step, 4, systematic=True)
        assert torch.bincount(idx, minlength=3).tolist() == [2, 1, 1]


def test_smc_systematic_option_reaches_the_resampler():
    kw = dict(nfe_budget=24, steps=4, n=6, beta=0.05, seed=3, interpolant="linear")
    a = sampling.search(half, lambda x0: x0[:, 0].double(), SHAPE, method="smc", resampling="systematic", **kw)
    b = sampling.search(half, lambda x0: x0[:, 0].double(), SHAPE, method="smc", **kw)
    assert a.options["resampling"] == "systematic"
    assert [s["lineage"] for s in a.seeds] != [s["lineage"] for s in b.seeds]


def test_time_grid_default_is_the_paper_grid_and_explicit_grids_pass_through():
    u = torch.arange(5, dtype=torch.float64) / 4
    torch.testing.assert_close(sampling.time_grid(4), torch.sqrt(1 - u ** 2), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(sampling.time_grid(4, "uniform", 0.5), 0.5 * (1 - u), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(sampling.time_grid(2, [0.9, 0.4, 0.0]),
                               torch.tensor([0.9, 0.4, 0.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="an explicit grid needs"):
        sampling.time_grid(2, [0.9, 0.4, 0.1])


def test_sop_renoises_at_most_to_the_clock_end_and_keys_its_particles():
    res = sampling.search(half, Log(), SHAPE, method="sop", nfe_budget=60, n=2, k=2, ode_steps=1, t0=0.5,
                          delta_f=0.7, delta_b=0.9, seed=0, interpolant="vp")
    rounds = [e for e in res.trace if "renoise_to" in e]
    assert rounds[0]["renoise_to"] == 1.0                     # min(0.5 + 0.7, 1)
    assert {s["lineage"][0][1] for s in res.seeds} <= {pid(0, 0), pid(1, 0)}


def test_sop_levels_count_the_rounds():
    events = []
    sampling.search(half, Log(), SHAPE, method="sop", nfe_budget=60, n=2, k=2, ode_steps=1, seed=0,
                    interpolant="linear", callback=events.append)
    assert sorted({e["step"] for e in events}) == [0, 1, 2, 3, 4]   # the prior, then one level per round (4)


def test_sop_with_no_affordable_round_names_the_bound():
    with pytest.raises(ValueError, match="need more than 0 re-noising rounds"):
        sampling.search(half, Log(), SHAPE, method="sop", nfe_budget=6, steps=4, n=2, k=3, interpolant="linear")


def test_psp_runs_with_one_seed_pair_when_only_that_fits():
    res = sampling.search(half, Log(), SHAPE, method="psp", nfe_budget=5, steps=4, seed=0, interpolant="linear")
    assert res.options["n"] == 1 and res.nfe == 5             # counts [2, 1, 1, 1]


def test_smc_target_ess_runs_with_the_constant_schedule():
    res = sampling.search(half, Log(), SHAPE, method="smc", nfe_budget=20, steps=4, n=5, target_ess=0.5, seed=0,
                          interpolant="linear")
    assert res.options["target_ess"] == 0.5 and res.nfe == 20


class _BadGrad(torch.autograd.Function):
    """r = x0̂[:, 0] with a gradient of +inf / NaN / −inf in its first three entries (a reward whose backward breaks)."""

    @staticmethod
    def forward(ctx, x0):
        ctx.shape = x0.shape
        return x0[:, 0].double()

    @staticmethod
    def backward(ctx, g):
        out = torch.zeros(ctx.shape, dtype=torch.float32)
        out[:, 0] = g.float()
        out[0, 0], out[0, 1], out[0, 2] = math.inf, math.nan, -math.inf
        return out


def test_non_finite_reward_gradients_are_zeroed_with_a_warning():
    res = sampling.search(half, _BadGrad.apply, SHAPE, method="svdd", nfe_budget=16, steps=2, n=2, k=4, seed=0,
                          guidance_scale=1.0, interpolant="linear")
    assert float(res.candidates.abs().max()) < 1e3           # zeroed, not clamped to ±float max
    assert any(w.startswith("non-finite reward gradient in 3 entries") for w in res.warnings)
    ok = sampling.search(half, lambda x0: x0[:, 0].double(), SHAPE, method="svdd", nfe_budget=16, steps=2, n=2, k=4,
                         seed=0, guidance_scale=1.0, interpolant="linear")
    assert not any("gradient" in w for w in ok.warnings)


def test_rbf_auto_init_noises_stays_an_integer():
    res = sampling.search(half, Log(), SHAPE, method="rbf", nfe_budget=43, steps=20, n=2, seed=0,
                          interpolant="linear")
    assert res.options["init_noises"] == 1                     # min(43 // 20, 43 // 2 − 20)


def test_rbf_budget_error_without_init_noises_names_steps():
    with pytest.raises(ValueError, match=r"n·\(steps\) = 2·\(10\)"):
        sampling.search(half, Log(), SHAPE, method="rbf", nfe_budget=15, steps=10, init_noises=None,
                        interpolant="linear")


def test_rbf_unspent_budget_is_traced_at_the_chains_level():
    count = iter(range(1000))     # every draw beats the last: each level accepts its first draw
    rising = lambda x0: torch.tensor([float(next(count)) for _ in range(x0.shape[0])], dtype=torch.float64)
    res = sampling.search(half, rising, SHAPE, method="rbf", nfe_budget=40, steps=4, n=1, init_noises=None,
                          last_level="stop", seed=0, interpolant="linear")
    unspent = [e for e in res.trace if "unspent" in e]
    assert unspent and all(e["step"] == 3 and e["unspent"] > 0 for e in unspent)


def test_rbf_variant_options_are_reported():
    res = sampling.search(half, Log(), SHAPE, method="rbf_threshold", nfe_budget=40, steps=4, tau=0.25, seed=0,
                          interpolant="linear")
    assert res.options["tau"] == 0.25 and res.options["tau_mode"] == "absolute"


def test_blockwise_soft_pick_uses_the_levels_own_uniforms():
    """β > 0: chain b keeps child j = inverse-CDF of softmax(r_b/β) at the uniform of stream −2, step = level."""
    rw, beta = Log(), 0.5
    res = sampling.search(half, rw, SHAPE, method="svdd", nfe_budget=24, steps=3, n=2, k=4, beta=beta, seed=7,
                          interpolant="linear")
    run = run_of(seed=7)
    picks = [e for e in res.trace if "rewards" in e]
    for lv, (e, r) in enumerate(zip(picks, rw.calls)):
        r = r.reshape(2, 4)
        cdf = torch.cumsum(torch.softmax(r / beta, 1), 1)
        u = run.uniforms(2, -2, lv)[:, None] * cdf[:, -1:]
        j = torch.searchsorted(cdf, u).clamp_(max=3).reshape(-1)
        assert e["rewards"] == [float(r[b, j[b]]) for b in range(2)]


@pytest.mark.parametrize("shift", [0.0, -5.0, 5.0])
def test_adaptive_beta_hits_the_target_ess_whatever_the_increments_offset(shift):
    """target_ess solves ESS(logw + Δ/β) = target·n; a common offset of Δ (all negative, all positive) changes nothing,
    as only the spread of the increments matters; equal increments keep β."""
    from sampling.search_methods import _adaptive_beta, _ess
    g = torch.Generator().manual_seed(3)
    delta = (torch.randn(40, generator=g, dtype=torch.float64) * 0.01) + shift
    logw = torch.zeros(40, dtype=torch.float64)
    for target in (0.2, 0.5):
        b = _adaptive_beta(logw, delta, target, 0.1)
        assert _ess(logw + delta / b)[1] == pytest.approx(target * 40, rel=1e-3)
        assert b == pytest.approx(_adaptive_beta(logw, delta - shift, target, 0.1), rel=1e-6)
    assert _adaptive_beta(logw, torch.full((40,), shift, dtype=torch.float64), 0.2, 0.1) == 0.1


@pytest.mark.parametrize("budget", [47, 100, 333])
def test_ramp_fills_the_budget_with_an_integer_population(budget):
    """particle_schedule='ramp' with n left to the budget: the largest integer n whose ramp fits (n + 1 would not)."""
    from sampling.search_methods import _default_final, funnel_counts
    den = lambda x, t: 0.5 * x
    res = sampling.search(den, lambda x0: -x0.flatten(1).pow(2).mean(1), (2, 4, 4), method="smc", nfe_budget=budget,
                          steps=5, particle_schedule="ramp")
    n = res.options["n"]
    assert isinstance(n, int) and n >= 1 and res.nfe <= budget
    cost = lambda m: sum(funnel_counts(m, _default_final("ramp", m), 5))
    assert cost(n) <= budget < cost(n + 1)
