"""Rollover Budget Forcing accounting on scripted reward sequences (paper Alg. 2 and the official code's loop).

The reward ignores its input and returns the next values of a script, so the quotas, refunds and level advances
are fully determined; they are compared with a hand-worked example and with two independent reference
transcriptions (Alg. 2 as a per-level loop; the spec §4.6 pseudocode of the official code, lock-step form)."""
import math
import random

import pytest
import torch

import sampling
from bench.search_problems import RareModeProblem
from search_helpers import Script

P = RareModeProblem(dim=2)


def rbf(values, budget, steps, max_batch=None, **opts):
    script = Script(values)
    res = sampling.search(P.denoise, script, P.shape, method="rbf", nfe_budget=budget, steps=steps,
                          max_batch=max_batch, **opts)
    return res, script


def moves(res, chain=0):
    """(target level, draws, quota, accepted, rolled_over, reward) for each level a chain completed."""
    return [(e["step"], e["draws"], e["quota"], e["accepted"], e["rolled_over"], e["reward"])
            for e in res.trace if "draws" in e and e["chain"] == chain]


def test_hand_worked_example_alg2_hold():
    """N = 1, M = 4, B = 12 → Q = 3 per level.
    level 0: 0.1 beats r* = −inf at draw 1 → accept, roll 2 over (cap 5 at level 1)
    level 1: 0.05, 0.08, 0.2 → accept at draw 3, roll 5 − 3 = 2 over (cap 5)
    level 2: 0.1, 0.2, 0.19, 0.0, 0.12 → 0.2 only ties r* (acceptance is strict) → quota spent, move on with the
             level's best (0.2, draw 5); cap 3
    level 3 (last, hold): every remaining draw (12 − 9 = 3): 0.3, 0.25, 0.5 → best 0.5 is returned."""
    vals = [0.1, 0.05, 0.08, 0.2, 0.1, 0.2, 0.19, 0.0, 0.12, 0.3, 0.25, 0.5]
    res, script = rbf(vals, 12, 4, n=1, init_noises=None)
    assert moves(res) == [(0, 1, 3, True, 2, 0.1), (1, 3, 5, True, 2, 0.2), (2, 5, 5, False, 0, 0.2),
                          (3, 3, 3, False, 0, 0.5)]
    assert res.nfe == 12 and script.i == 12 and script.calls == [1] * 12
    assert res.reward == 0.5 and res.candidate_rewards.tolist() == [0.5]
    # the lineage records which draw was kept at each level: draw ids 0 (noise), 3, 5 (best of level 2), 11
    ops = res.seeds[0]["lineage"]
    assert [op[0] for op in ops] == ["noise", "sde", "sde", "sde"]
    assert [op[1] & 0xFFFFFFFF for op in ops] == [0, 3, 5, 11] and [op[2] for op in ops] == [0, 1, 2, 3]


def test_hand_worked_example_alg2_stop_leaves_budget_unspent():
    """Same script, last_level='stop' (Alg. 2 literally): 0.3 > r* = 0.2 is accepted at the last level and the
    chain ends with 2 of its 12 NFE unspent (this is what the 'hold' default avoids)."""
    vals = [0.1, 0.05, 0.08, 0.2, 0.1, 0.2, 0.19, 0.0, 0.12, 0.3, 0.25, 0.5]
    res, script = rbf(vals, 12, 4, n=1, init_noises=None, last_level="stop")
    assert moves(res) == [(0, 1, 3, True, 2, 0.1), (1, 3, 5, True, 2, 0.2), (2, 5, 5, False, 0, 0.2),
                          (3, 1, 3, True, 2, 0.3)]
    assert res.nfe == 10 and res.reward == 0.3
    assert [e["unspent"] for e in res.trace if "unspent" in e] == [2]


def test_hand_worked_example_code_variant():
    """init_noises = K0 = 2 (official code): B = 12, N = 1, M = 4 → Q = ⌊(12 − 2)/4⌋ = 2.
    init: best of (0.1, 0.3) = 0.3;  level 1: 0.2, 0.25 → quota spent, move with 0.25 (r* = 0.3), cap 2
    level 2: 0.4 → accept at draw 1, roll 1 over; level 3 (hold): the 12 − 5 = 7 remaining draws, best 0.9."""
    vals = [0.1, 0.3, 0.2, 0.25, 0.4, 0.1, 0.9, 0.2, 0.3, 0.35, 0.5, 0.45]
    res, script = rbf(vals, 12, 4, n=1, init_noises=2)
    assert script.calls[0] == 2, "the K0 initial noises are evaluated as one batch"
    assert moves(res) == [(0, 2, 2, False, 0, 0.3), (1, 2, 2, False, 0, 0.25), (2, 1, 2, True, 1, 0.4),
                          (3, 7, 3, False, 0, 0.9)]
    assert res.nfe == 12 and res.reward == 0.9


def test_min_draws_accepts_best_of_the_first_draws():
    """min_draws = 3: a level may be left (with its best draw so far) only after 3 draws; then as Alg. 2."""
    vals = [0.2, 0.1, 0.3, 0.5, 0.4, 0.45, 0.6, 0.1, 0.2, 0.3, 0.35, 0.7, 0.2, 0.1]
    res, _ = rbf(vals, 14, 3, n=1, init_noises=None, min_draws=3)
    # Q = 4. level 0: best of 0.2, 0.1, 0.3 = 0.3 > −inf after 3 draws → accept, roll 1 (cap 5)
    # level 1: 0.5, 0.4, 0.45 → best 0.5 > 0.3 → accept at draw 3, roll 2; level 2 (hold): 8 draws, best 0.7
    assert moves(res) == [(0, 3, 4, True, 1, 0.3), (1, 3, 5, True, 2, 0.5), (2, 8, 6, False, 0, 0.7)]


# ---- independent reference transcriptions ------------------------------------------------------
def ref_alg2(col, per_chain, M, hold, min_draws=1):
    """Alg. 2 as a per-level loop for one chain: uniform Q = ⌊B/M⌋, rollover of cap − j on acceptance.
    Returns the level moves, the returned reward, the draws used and the draw index kept at each level."""
    Q = per_chain // M
    r_star, carry, drawn, out, kept = -math.inf, 0, 0, [], []
    for level in range(M):
        cap, best, arg = Q + carry, None, None
        if hold and level == M - 1:
            draws = col[drawn:per_chain]
            arg = drawn + draws.index(max(draws))   # first of equal bests
            out.append((level, len(draws), cap, False, 0, max(draws)))
            return out, max(draws), per_chain, kept + [arg]
        for j in range(1, 10 ** 9):
            if drawn == per_chain:
                return out, best, drawn, kept + [arg]
            r = col[drawn]
            if best is None or r > best:
                best, arg = r, drawn
            drawn += 1
            if j >= min(min_draws, cap) and best > r_star:
                r_star, carry = best, cap - j
                out.append((level, j, cap, True, carry, best))
                break
            if j >= cap:
                carry = 0
                out.append((level, j, cap, False, 0, best))
                break
        kept.append(arg)
        if level == M - 1:
            return out, best, drawn, kept


def ref_code(cols, budget, M, K0):
    """The spec §4.6 pseudocode of the official rbf.py (lock-step over N chains, used starts at 1, cap/used test),
    with one deviation we also make: the loop runs while nfe + N ≤ budget (the code stops at nfe + N ≥ budget)."""
    N = len(cols)
    its = [iter(c) for c in cols]
    Q = (budget - K0 * N) // (M * N)
    st = []
    for b in range(N):
        init = [next(its[b]) for _ in range(K0)]
        st.append({"level": 0, "used": 1, "cap": Q, "best": None, "r_star": max(init), "out": [
            (0, K0, K0, False, 0, max(init))]})
    nfe = K0 * N
    while nfe + N <= budget:
        nfe += N
        for b, c in enumerate(st):
            r = next(its[b])
            can_move = c["level"] < M - 2
            if c["best"] is None or r > c["best"]:
                c["best"] = r
            if r > c["r_star"]:
                c["r_star"] = r
                if can_move:
                    c["out"].append((c["level"] + 1, c["used"], c["cap"], True, c["cap"] - c["used"], r))
                    c["level"] += 1
                    c["cap"], c["used"], c["best"] = (c["cap"] - c["used"]) + Q, 0, None
            elif can_move and c["used"] == c["cap"]:
                c["out"].append((c["level"] + 1, c["used"], c["cap"], False, 0, c["best"]))
                c["level"] += 1
                c["cap"], c["used"], c["best"] = Q, 0, None
            c["used"] += 1
    for c in st:   # final level: every leftover draw (used − 1 draws since the last move)
        c["out"].append((c["level"] + 1, c["used"] - 1, c["cap"], False, 0, c["best"]))
    return [c["out"] for c in st], nfe


def rising_script(rng, n, ties=False):
    """Rewards with an upward drift plus noise: both early acceptances and exhausted quotas occur (ties: on a
    0.05 lattice, so draws that only equal r* are frequent)."""
    vals = [0.02 * (i ** 0.5) + rng.random() * 0.3 for i in range(n)]
    return [round(v * 20) / 20 if ties else round(v, 6) for v in vals]


@pytest.mark.parametrize("trial", range(12))
def test_alg2_matches_reference_on_random_scripts(trial):
    rng = random.Random(trial)
    M, budget = rng.choice([2, 3, 5, 8]), rng.randint(20, 90)
    budget = max(budget, M)
    hold = trial % 2 == 0
    min_draws = 1 if trial % 3 else rng.randint(2, 4)
    col = rising_script(rng, budget, ties=trial % 4 == 1)
    res, script = rbf(col, budget, M, n=1, init_noises=None, last_level="hold" if hold else "stop", min_draws=min_draws,
                      max_batch=1 if trial % 4 == 0 else None)
    exp_moves, exp_best, exp_drawn, exp_kept = ref_alg2(col, budget, M, hold, min_draws)
    assert moves(res) == exp_moves
    assert [op[1] & 0xFFFFFFFF for op in res.seeds[0]["lineage"]] == exp_kept
    assert res.nfe == exp_drawn == script.i and res.reward == exp_best
    if hold:
        assert res.nfe == budget, "the default spends the whole budget"


@pytest.mark.parametrize("trial", range(8))
def test_code_variant_matches_official_loop(trial):
    """N = 2 chains in lock-step with the initial best-of-K0 pick and the hold-at-M−2 rule (spec pseudocode)."""
    rng = random.Random(100 + trial)
    N, M, K0 = 2, rng.choice([2, 3, 4, 10]), rng.choice([1, 3, 5])
    budget = rng.randint(N * (K0 + M) + 2, 160)
    per_chain = budget // N
    cols = [rising_script(rng, per_chain, ties=trial % 2 == 1) for _ in range(N)]
    # the search sees one batch of N·K0 noises (chain-major), then one row per chain per iteration
    flat = [v for b in range(N) for v in cols[b][:K0]]
    flat += [cols[b][i] for i in range(K0, per_chain) for b in range(N)]
    res, script = rbf(flat, budget, M, n=N, init_noises=K0)
    exp, nfe = ref_code(cols, budget, M, K0)
    assert [moves(res, b) for b in range(N)] == exp
    assert res.nfe == nfe == N * per_chain
    assert res.candidate_rewards.tolist() == [e[-1][-1] for e in exp]
    assert res.options["quota"] == (budget - K0 * N) // (M * N)


def test_chains_are_independent_of_each_other():
    """A chain's draws, keys and decisions do not depend on the other chains (keys = (chain, draw index))."""
    for k0 in (None, 2):
        r2 = sampling.search(P.denoise, P.reward, P.shape, method="rbf", nfe_budget=80, steps=5, n=2, seed=5,
                             init_noises=k0)
        r1 = sampling.search(P.denoise, P.reward, P.shape, method="rbf", nfe_budget=40, steps=5, n=1, seed=5,
                             init_noises=k0)
        assert torch.equal(r2.candidates[:1], r1.candidates) and r2.seeds[0] == r1.seeds[0]
        assert moves(r2, 0) == moves(r1, 0)


def test_default_is_the_official_code_setting():
    """Default init_noises='auto': K0 = ⌊B/20⌋ per chain (25 at 500 NFE) and Q = ⌊(B − K0·N)/(M·N)⌋ = 22."""
    vals = [0.5] * 500
    res, script = rbf(vals, 500, 10)
    o = res.options
    assert (o["n"], o["init_noises"], o["quota"], o["last_level"], o["min_draws"]) == (2, 25, 22, "hold", 1)
    assert script.calls[0] == 50 and res.nfe == 500
    res, _ = rbf([0.5] * 60, 60, 10)
    assert res.options["init_noises"] == 3 and res.nfe == 60
    # a budget that cannot pay for a pick plus one draw per level falls back to Alg. 2's single noise
    res, _ = rbf([0.5] * 21, 21, 10)
    assert res.options["init_noises"] is None and res.nfe == 20
