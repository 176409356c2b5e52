"""RBF's verifier-threshold and noise-aware acceptance rules, RBF's init_noises='code', SMC's systematic
resampling and adaptive temperature (issue 12 items 3–5, issue 13 item 6).

Budgets, batching invariance, determinism and replay on the analytic Gaussian-mixture flow; the acceptance rules on
scripted rewards (the reward ignores its input and returns the next values of a script), with hand-worked
examples and the direction of each rule (a higher τ or κ never leaves a level earlier, and on average advances
less often over fixed random scripts)."""
import json
import math
import random

import pytest
import torch

import sampling
from bench.search_problems import RareModeProblem
from sampling.search_rbf_variants import quantile
from search_helpers import same, Script, stable

P = RareModeProblem(dim=3)

CASES = [
    ("rbf_threshold", {}),
    ("rbf_threshold", {"tau": 0.3, "n": 3}),
    ("rbf_threshold", {"tau": 0.75, "tau_mode": "quantile", "init_noises": None}),
    ("rbf_threshold", {"tau": 0.5, "last_level": "stop", "min_draws": 2, "finish_steps": 2}),
    ("rbf_adaptive", {}),
    ("rbf_adaptive", {"kappa": 2.0, "init_noises": None, "guidance_scale": 300.0}),
    ("rbf", {"init_noises": "code"}),
    ("smc", {"resampling": "systematic"}),
    ("smc", {"resampling": "systematic", "ess_threshold": 0.5, "particle_schedule": "funnel"}),
    ("smc", {"target_ess": 0.3}),
    ("smc", {"particle_schedule": "ramp"}),
    ("smc", {"particle_schedule": "ramp", "n": 3, "final_particles": 9, "target_ess": 0.3}),
    ("smc", {"target_ess": 0.5, "potential": "max", "resampling": "systematic", "particle_schedule": "funnel"}),
]
IDS = [f"{m}-{'-'.join(f'{k}={v}' for k, v in o.items()) or 'default'}" for m, o in CASES]


def run(method, budget=80, steps=5, seed=3, max_batch=None, reward=None, **opts):
    return sampling.search(P.denoise, reward or P.reward, P.shape, method=method, nfe_budget=budget, steps=steps,
                           seed=seed, max_batch=max_batch, **opts)


def scripted(method, values, budget, steps, **opts):
    script = Script(values)
    res = sampling.search(P.denoise, script, P.shape, method=method, nfe_budget=budget, steps=steps, **opts)
    return res, script


def moves(res, chain=0):
    """(target level, draws, quota, accepted, rolled_over, reward) for each level a chain completed."""
    return [(e["step"], e["draws"], e["quota"], e["accepted"], e["rolled_over"], e["reward"])
            for e in res.trace if "draws" in e and e["chain"] == chain]


# ---- the common guarantees -----------------------------------------------------------------------------------
@pytest.mark.parametrize("method,opts", CASES, ids=IDS)
def test_budget_batching_determinism_replay(method, opts):
    r = stable(run, method, opts)
    assert 0 < r.nfe <= 80 and r.budget == 80 and r.summary()["nfe"] == r.nfe
    if method != "smc" and opts.get("last_level", "hold") == "hold":
        assert r.nfe == 80 - 80 % r.options["n"], "RBF variants spend every chain's whole budget"
    assert r.search_reward == float(r.candidate_rewards.max()) == float(r.candidate_rewards[r.chosen])
    for i, s in enumerate(r.seeds):
        x0 = sampling.replay(P.denoise, P.shape, s, reward=P.reward)
        torch.testing.assert_close(x0, r.candidates[i:i + 1], rtol=0, atol=1e-6)
    json.dumps(r.to_json(), allow_nan=False)


# ---- verifier thresholds ---------------------------------------------------------------------------------------
def test_threshold_hand_worked_absolute():
    """N = 1, M = 4, B = 12, no initial pick → Q = 3; τ = 0.5.
    level 0: 0.1, 0.6 → best 0.6 ≥ τ at draw 2 → leave, roll 1 over (cap 4)
    level 1: 0.2, 0.3, 0.4, 0.45 → never ≥ τ: quota spent, move on with 0.45 (not accepted), cap 3
    level 2: 0.55 ≥ τ at draw 1 → leave although 0.55 < r* = 0.6 (τ replaces r*), roll 2 (cap 5); r* stays 0.6
    level 3 (hold): the remaining 5 draws, best 0.9 returned."""
    vals = [0.1, 0.6, 0.2, 0.3, 0.4, 0.45, 0.55, 0.1, 0.2, 0.9, 0.3, 0.0]
    res, script = scripted("rbf_threshold", vals, 12, 4, n=1, init_noises=None, tau=0.5)
    assert moves(res) == [(0, 2, 3, True, 1, 0.6), (1, 4, 4, False, 0, 0.45), (2, 1, 3, True, 2, 0.55),
                          (3, 5, 5, False, 0, 0.9)]
    assert [e["r_star"] for e in res.trace if "draws" in e][2] == 0.6
    assert res.nfe == 12 == script.i and res.reward == 0.9
    # the same script under Alg. 2 (rbf) leaves level 0 at its first draw: the threshold changes the decisions
    alg2, _ = scripted("rbf", vals, 12, 4, n=1, init_noises=None)
    assert moves(alg2)[0] == (0, 1, 3, True, 2, 0.1)


def test_threshold_hand_worked_quantile():
    """τ = q = 0.5 of the level's earlier draws, N = 1, M = 3, B = 12 → Q = 4.
    level 0: 0.3 (no earlier draw), 0.1 < median{0.3}, 0.2 ≥ median{0.3, 0.1} = 0.2 → leave with the best 0.3,
    roll 1 (cap 5); level 1: 0.5, 0.6 ≥ median{0.5} → leave with 0.6, roll 3 (cap 7); level 2 (hold): 7 draws."""
    vals = [0.3, 0.1, 0.2, 0.5, 0.6, 0.1, 0.2, 0.3, 0.8, 0.4, 0.5, 0.6]
    res, _ = scripted("rbf_threshold", vals, 12, 3, n=1, init_noises=None, tau=0.5, tau_mode="quantile")
    assert moves(res) == [(0, 3, 4, True, 1, 0.3), (1, 2, 5, True, 3, 0.6), (2, 7, 7, False, 0, 0.8)]
    # q = 1 asks for a record: at level 0 only the 4th draw (0.5 > 0.3) is one, so the level takes its whole quota
    res1, _ = scripted("rbf_threshold", vals, 12, 3, n=1, init_noises=None, tau=1.0, tau_mode="quantile")
    assert moves(res1)[0] == (0, 4, 4, True, 0, 0.5)


def test_quantile_helper_matches_torch():
    rng = random.Random(0)
    for _ in range(50):
        v = [rng.random() for _ in range(rng.randint(1, 9))]
        q = rng.random()
        assert quantile(v, q) == pytest.approx(float(torch.quantile(torch.tensor(v, dtype=torch.float64), q)))


def noisy_script(rng, n):
    return [round(0.03 * i ** 0.5 + rng.random() * 0.5, 6) for i in range(n)]


def first_leave(res):
    return moves(res)[0][1]


@pytest.mark.parametrize("mode,taus,budget", [("absolute", [0.3, 0.45, 0.55, 0.62], 30),
                                              ("quantile", [0.0, 0.25, 0.5, 0.75, 1.0], 24)])
def test_higher_tau_advances_less_often(mode, taus, budget):
    """Pathwise: on one script a higher τ never leaves the first level earlier. On average over 40 fixed random
    scripts (rewards 0.03·√i + U(0, 0.5); N = 1, M = 6, Q = B/6): the accepted advances strictly fall and the
    first level's draws rise as τ grows."""
    accepted, first = [], []
    for tau in taus:
        acc, fl = 0, 0
        for trial in range(40):
            vals = noisy_script(random.Random(trial), budget)
            res, _ = scripted("rbf_threshold", vals, budget, 6, n=1, init_noises=None, tau=tau, tau_mode=mode)
            acc += sum(m[3] for m in moves(res))
            fl += first_leave(res)
        accepted.append(acc / 40)
        first.append(fl / 40)
    assert all(a > b for a, b in zip(accepted, accepted[1:])), accepted
    assert all(a <= b for a, b in zip(first, first[1:])) and first[-1] > first[0], first
    for trial in range(10):   # pathwise at the first level
        vals = noisy_script(random.Random(100 + trial), budget)
        fl = [first_leave(scripted("rbf_threshold", vals, budget, 6, n=1, init_noises=None, tau=t,
                                   tau_mode=mode)[0]) for t in taus]
        assert fl == sorted(fl), (trial, fl)


# ---- noise-aware RBF -----------------------------------------------------------------------------------------
def test_adaptive_hand_worked():
    """N = 1, M = 3, B = 12, no initial pick → Q = 4, κ = 1.
    level 0: r* = −inf: the first finite best after 2 draws (0.5) is accepted, roll 2 (cap 6)
    level 1: 0.52 (1 draw: no spread yet), 0.3 (gain 0.02 ≤ sd 0.156), 0.7 (gain 0.2 ≤ sd 0.2003),
             0.9 (gain 0.4 > sd 0.2558) → leave with 0.9 at draw 4, roll 2 (cap 6)
    level 2 (hold): the remaining 6 draws. Alg. 2 (rbf) on the same script leaves level 0 at its first draw and
    level 1 at 0.52, a gain of 0.02 over r* = 0.5."""
    vals = [0.5, 0.1, 0.52, 0.3, 0.7, 0.9, 0.2, 0.95, 0.1, 0.3, 0.4, 0.5]
    res, script = scripted("rbf_adaptive", vals, 12, 3, n=1, init_noises=None)
    assert moves(res) == [(0, 2, 4, True, 2, 0.5), (1, 4, 6, True, 2, 0.9), (2, 6, 6, False, 0, 0.95)]
    assert script.i == 12 and res.reward == 0.95
    alg2, _ = scripted("rbf", vals, 12, 3, n=1, init_noises=None)
    assert moves(alg2)[:2] == [(0, 1, 4, True, 3, 0.5), (1, 2, 7, True, 5, 0.52)]


def test_adaptive_tie_and_kappa_zero_reduce_to_alg2_after_two_draws():
    """κ = 0 is Alg. 2 with min_draws = 2 (every quota ≥ 2 here): identical decisions on random scripts."""
    for trial in range(12):
        rng = random.Random(trial)
        M = rng.choice([2, 3, 5])
        budget = rng.randint(3 * M, 70)
        vals = [round(v * 20) / 20 for v in noisy_script(rng, budget)] if trial % 2 else noisy_script(rng, budget)
        a, _ = scripted("rbf_adaptive", vals, budget, M, n=1, init_noises=None, kappa=0.0)
        b, _ = scripted("rbf", vals, budget, M, n=1, init_noises=None, min_draws=2)
        assert moves(a) == moves(b) and a.reward == b.reward


def test_larger_kappa_leaves_later_and_advances_less():
    """With an initial pick (r* finite), the first level's leaving time is monotone in κ on every script, and
    the accepted advances fall on average over 40 scripts (N = 1, M = 6, B = 60, K0 = 2)."""
    kappas = [0.0, 0.5, 1.0, 2.0]
    acc = []
    for kappa in kappas:
        total = 0
        for trial in range(40):
            vals = noisy_script(random.Random(trial), 60)
            res, _ = scripted("rbf_adaptive", vals, 60, 6, n=1, init_noises=2, kappa=kappa)
            total += sum(m[3] for m in moves(res))
        acc.append(total / 40)
    assert all(a > b for a, b in zip(acc, acc[1:])), acc
    for trial in range(10):
        vals = noisy_script(random.Random(200 + trial), 60)
        fl = [moves(scripted("rbf_adaptive", vals, 60, 6, n=1, init_noises=2, kappa=k)[0])[1][1] for k in kappas]
        assert fl == sorted(fl), (trial, fl)


# ---- RBF init_noises = "code" ----------------------------------------------------------------------------------
def test_init_noises_code_is_25_with_the_small_budget_fallback():
    """'code' = the official code's K0 = 25 per chain at every budget ('auto' gives ⌊B/20⌋: 5 at 100 NFE);
    lowered to ⌊B/N⌋ − M when a chain could not also afford one draw per level, None below 1."""
    for budget, steps, expect_code, expect_auto in [(100, 10, 25, 5), (500, 10, 25, 25), (1000, 10, 25, 50),
                                                    (60, 10, 20, 3), (21, 10, None, None)]:
        res, script = scripted("rbf", [0.5] * budget, budget, steps, init_noises="code")
        assert res.options["init_noises"] == expect_code, budget
        auto, _ = scripted("rbf", [0.5] * budget, budget, steps)
        assert auto.options["init_noises"] == expect_auto, budget
        k0 = expect_code or 0
        assert res.options["quota"] == (budget - 2 * k0) // (steps * 2)
        assert res.nfe == 2 * (budget // 2) == script.i


def test_init_noises_code_equals_the_explicit_integer():
    a = run("rbf", budget=100, steps=5, init_noises="code")
    b = run("rbf", budget=100, steps=5, init_noises=25)
    assert same(a, b) and a.options["init_noises"] == 25


# ---- SMC systematic resampling -------------------------------------------------------------------------------
def test_systematic_resampling_gives_floor_or_ceil_copies():
    """N = 8 particles, scripted rewards at level 0 with weights ∝ exp(r/β): systematic resampling gives every
    particle ⌊8w⌋ or ⌈8w⌉ copies; multinomial on the same weights does not (a fixed seed where it strays)."""
    r0 = [0.0, 0.05, 0.1, 0.2, 0.0, 0.15, 0.3, 0.01]
    w = torch.softmax(torch.tensor(r0, dtype=torch.float64) / 0.1, 0)
    strays = 0
    for seed in range(6):
        for scheme in ("systematic", "multinomial"):
            res, _ = scripted("smc", r0 + [0.0] * 8, 16, 2, n=8, seed=seed, resampling=scheme)
            parents = [s["lineage"][0][1] >> 32 for s in res.seeds]
            copies = torch.tensor([parents.count(i) for i in range(8)], dtype=torch.float64)
            ok = bool(((copies >= torch.floor(8 * w)) & (copies <= torch.ceil(8 * w))).all())
            if scheme == "systematic":
                assert ok, (seed, copies.tolist())
            else:
                strays += not ok
    assert strays >= 1, "multinomial should stray from ⌊Nw⌋/⌈Nw⌉ for some seed (else the test is blind)"


def test_systematic_resampling_keeps_the_heaviest_particle():
    """A particle with weight > 1/N always survives systematic resampling (at least ⌊N·w⌋ ≥ 1 copies)."""
    for seed in range(10):
        res, _ = scripted("smc", [0.0] * 5 + [0.4] + [0.0] * 4 + [0.0] * 10, 20, 2, n=10, seed=seed,
                          resampling="systematic")
        parents = [s["lineage"][0][1] >> 32 for s in res.seeds]
        assert parents.count(5) >= 8, parents   # w₅ = e⁴/(e⁴ + 9) ≈ 0.86 → ⌊8.6⌋ = 8 or 9 copies


# ---- SMC adaptive temperature (target_ess) ---------------------------------------------------------------------
R0 = [0.0, 0.05, 0.1, 0.2, 0.0, 0.15, 0.3, 0.01, 0.12, 0.07]


def level0(res):
    return next(e for e in res.trace if e.get("step") == 0 and "ess" in e)


def test_target_ess_solves_beta_for_the_stated_ess():
    """Level 0 of 10 scripted rewards, β = inf (no cap): the solved β gives ESS = target·n (to 1e-6)."""
    for target in (0.2, 0.5, 0.8):
        res, _ = scripted("smc", R0 + [0.0] * 10, 20, 2, n=10, target_ess=target, beta=math.inf)
        beta = res.options["temperatures"][0]
        w = torch.softmax(torch.tensor(R0, dtype=torch.float64) / beta, 0)
        assert float(1 / (w * w).sum()) == pytest.approx(target * 10, abs=1e-6)
        assert level0(res)["ess"] == pytest.approx(target * 10, abs=1e-6) and level0(res)["beta"] == beta


def test_beta_caps_the_adaptive_temperature():
    """β_ℓ = min(β, β*): small reward differences are cooled to the target ESS, unit steps (β* > β) keep β and
    then the run is bit-identical to plain SMC."""
    small, _ = scripted("smc", [v / 100 for v in R0] + [0.0] * 10, 20, 2, n=10, target_ess=0.5)
    assert small.options["temperatures"][0] < 0.1 and level0(small)["ess"] == pytest.approx(5.0, abs=1e-6)
    unit = [float(round(10 * v)) for v in R0]   # differences of whole units: β* ≫ 0.1
    capped, _ = scripted("smc", unit + [0.0] * 10, 20, 2, n=10, target_ess=0.5)
    plain, _ = scripted("smc", unit + [0.0] * 10, 20, 2, n=10)
    assert capped.options["temperatures"] == [0.1, 0.1]
    assert capped.seeds == plain.seeds and torch.equal(capped.candidates, plain.candidates)


def test_lower_target_ess_is_colder_and_concentrates_resampling():
    """A lower target gives a smaller β and fewer distinct survivors, summed over 8 seeds (β = inf: no cap)."""
    betas, survivors = [], []
    for target in (0.8, 0.5, 0.2):
        b, k = [], 0
        for seed in range(8):
            res, _ = scripted("smc", R0 + [0.0] * 10, 20, 2, n=10, seed=seed, target_ess=target, beta=math.inf)
            b.append(res.options["temperatures"][0])
            k += level0(res)["survivors"]
        betas.append(b[0])
        survivors.append(k)
    assert betas[0] > betas[1] > betas[2], betas
    assert survivors[0] > survivors[1] > survivors[2], survivors


def test_target_ess_is_independent_of_the_reward_scale():
    """Without the cap (β = inf), rewards × 1000 (or + 5): β scales with them and every choice, lineage and
    sample stays the same; the fixed β = 0.1 is not scale-free."""
    base = run("smc", budget=60, steps=5, target_ess=0.3, beta=math.inf)
    for f in (lambda r: 1000.0 * r, lambda r: r + 5.0):
        other = run("smc", budget=60, steps=5, target_ess=0.3, beta=math.inf,
                    reward=lambda x0, f=f: f(P.reward(x0)))
        assert other.seeds == base.seeds and torch.equal(other.candidates, base.candidates)
    big = run("smc", budget=60, steps=5, target_ess=0.3, beta=math.inf, reward=lambda x0: 1000.0 * P.reward(x0))
    ratio = [b / a for a, b in zip(base.options["temperatures"], big.options["temperatures"])]
    assert all(r == pytest.approx(1000.0, rel=1e-6) for r in ratio), ratio
    assert run("smc", budget=60, steps=5).seeds != run("smc", budget=60, steps=5,
                                                       reward=lambda x0: 1000.0 * P.reward(x0)).seeds


def test_target_ess_with_equal_rewards_keeps_beta():
    res, _ = scripted("smc", [0.3] * 20, 20, 2, n=10, target_ess=0.5)
    assert res.options["temperatures"][0] == 0.1 and level0(res)["ess"] == pytest.approx(10.0)


# ---- SMC ramp (a growing population) ---------------------------------------------------------------------------
@pytest.mark.parametrize("budget,steps", [(20, 10), (37, 3), (100, 10), (500, 10), (333, 7)])
def test_ramp_sizes_itself_from_the_budget(budget, steps):
    """n: the largest with Σ funnel_counts(n, 3n) ≤ budget (brute force); counts grow by resampling up."""
    r = run("smc", budget=budget, steps=steps, particle_schedule="ramp")
    cost = lambda m: sum(sampling.funnel_counts(m, 3 * m, steps))
    best = max(m for m in range(1, budget + 1) if cost(m) <= budget)
    counts = r.options["particle_counts"]
    assert r.options["n"] == best and r.options["final_particles"] == 3 * best and r.nfe == cost(best) <= budget
    assert counts == sorted(counts) and counts[0] == best and counts[-1] == 3 * best == len(r.candidates)
    if budget == 100 and steps == 10:
        assert counts == [5, 6, 7, 8, 9, 11, 12, 13, 14, 15]
    grown = [e for e in r.trace if "next_particles" in e and e["next_particles"] > e["particles"]]
    assert all(e["resampled"] for e in grown) and len(grown) == sum(a < b for a, b in zip(counts, counts[1:]))


# ---- bad input ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method,kwargs,match", [
    ("rbf_threshold", {"tau_mode": "relative"}, "tau_mode"),
    ("rbf_threshold", {"tau": 1.5, "tau_mode": "quantile"}, "quantile"),
    ("rbf_threshold", {"tau": "high"}, "tau"),
    ("rbf_adaptive", {"kappa": -1.0}, "kappa"),
    ("rbf_adaptive", {"n": 0}, "n"),
    ("rbf", {"init_noises": "codes"}, "init_noises"),
    ("smc", {"resampling": "stratified"}, "resampling"),
    ("smc", {"target_ess": 1.0}, "target_ess"),
    ("smc", {"particle_schedule": "ramp", "n": 4, "final_particles": 3}, "the ramp only grows"),
    ("smc", {"particle_schedule": "ramp", "n": 4, "final_particles": 30}, "ramp's Σ particles per step"),
    ("smc", {"target_ess": 0.5, "temperature_schedule": "linear"}, "target_ess"),
])
def test_bad_options_error_before_any_evaluation(method, kwargs, match):
    calls = []

    def denoise(x, t):
        calls.append(1)
        return P.denoise(x, t)
    with pytest.raises(ValueError, match=match):
        sampling.search(denoise, P.reward, P.shape, method=method, nfe_budget=50, steps=5, **kwargs)
    assert not calls
