"""Two acceptance rules for Rollover Budget Forcing (issue 12): verifier thresholds and a noise-aware RBF.

Both run RBF's loop unchanged (search_rbf.rbf_run: the code's best-of-K0 start, per-level quota Q, rollover of the
unused quota on acceptance, quota exhaustion moves on with the level's best, hold at the last level). Only the
rule "may this chain leave its level now, with the level's best draw?" differs from Alg. 2's "best > r*".

rbf_threshold: verifier-threshold RBF, written from the description of arXiv 2512.08985 only (its text is
CC BY-NC-ND and no code is public, so nothing is taken from it but the idea): a level is left early only when the
best draw's reward clears a threshold τ; the quota (with rollover) stays the cap.
  tau_mode = "absolute"  τ is a reward value: leave after draw j when max(r_1..r_j) ≥ τ. With the Count Objects
                         Reward (−RSS) τ = 0 means "leave only once a clean estimate has every count right".
  tau_mode = "quantile"  τ = q ∈ [0, 1]: leave after draw j ≥ 2 when the newest reward r_j is at least the
                         q-quantile (linear interpolation) of the level's earlier draws r_1..r_{j−1}, i.e. the newest
                         draw is in the top (1 − q) of what this level has produced; q = 1 asks for a record.
                         (Compared with the level's best, any quantile of the level's own draws would be cleared
                         at once, so the newest draw is compared with the earlier ones.)
  A higher τ (or q) never advances earlier on the same draws, so it advances less often and spends more of the
  quota on the noisy levels. Departures/our choices: the threshold replaces the comparison with r* (a chain may
  leave with a best below r*; r* is then kept, r* = max(r*, best)); min_draws as in rbf; one τ for every level.

rbf_adaptive: a noise-aware acceptance rule (ours). Derivation. At level ℓ a chain's draws are siblings from one
parent; write a draw's observed reward as r_i = f_i + e_i, f_i the value the trajectory will keep and e_i the
error of scoring the blurry clean estimate x0̂ at this noise level (sd σ_ℓ, large at the noisy levels, → 0 at the
last). Alg. 2 accepts when r_i > r*. If no draw is truly better than the parent (f_i ≤ f*), r_i − r* is a
difference of two errors, positive with probability about ½ per draw, so at noisy levels acceptance is a coin
flip and selects nothing (README, "RBF vs SVDD": a child beats its parent 47 % … 24 % of the time on the analytic
benchmark and RBF leaves those levels after 1–3 draws). We do not know σ_ℓ, but the sample standard deviation
ŝ_ℓ of the level's own draws (≥ 2 of them) estimates it from above: Var(r_i) = Var(f_i) + σ_ℓ² ≥ σ_ℓ². So a
gain that is not larger than κ·ŝ_ℓ is within what the scoring noise alone produces, and a one-sided test at
about z = κ/√2 (the difference of two errors has sd √2·σ_ℓ) asks for
    best − r* > κ · ŝ_ℓ        (after at least 2 draws; κ = 1 by default),
otherwise the chain keeps drawing until its quota is spent and then moves on with the level's best. ŝ_ℓ comes
from the level itself, so the rule adapts per level without a schedule: at sharp levels (small sibling spread
relative to the gains) it is Alg. 2 after two draws, at flat or noisy levels it spends the quota on a best-of-Q
selection (SVDD-like), and the rollover still moves unused draws on. Ties (ŝ = 0) fall back to best > r*.
Where it helps and where it does not (README.md, "Measured behaviour"): on the analytic benchmark, whose early
rewards differ by ~1e-4 and where Alg. 2's acceptance is a coin flip, κ = 1 lifts RBF from 0.48 to 0.69 at
100 NFE and from 0.57 to 0.78 at 500 (16 seeds). At 50 NFE the quota is 2 and every rule takes both draws, so it
does not help. On the playground (−RSS in whole counts) the level's sd is about one count, so it waits for a gain
of a whole count: it is worse at 100 NFE (0.69 vs 0.76, 100 cases) and better at 500 (0.95 vs 0.88).
It cannot help when the noisy levels' rewards carry no signal at all (then best-of-Q selects noise too), and
the draws it spends early are taken from the last level's share.
Measured for rbf_threshold: on the analytic benchmark, τ = 0.5 gives 0.65 / 0.84 at 100 / 500 NFE (RBF
0.48 / 0.57). On the playground (100 cases), τ = 0 gives 0.67 / 0.97 (RBF 0.76 / 0.88).
"""
import math

from .search_rbf import rbf_run

__all__ = ["rbf_threshold", "rbf_adaptive", "TAU_MODES", "quantile"]

TAU_MODES = ("absolute", "quantile")


def quantile(values, q):
    """q-quantile of a non-empty list with linear interpolation (numpy's default); −inf entries sort first."""
    v = sorted(values)
    pos = q * (len(v) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(v) - 1)
    if v[lo] == v[hi] or pos == lo:
        return v[lo]
    return v[lo] + (pos - lo) * (v[hi] - v[lo])


def _threshold_rule(tau, mode, min_draws):
    if mode == "absolute":
        return lambda ch: ch.used >= min(min_draws, ch.cap) and ch.best_r >= tau
    return lambda ch: (ch.used >= max(2, min(min_draws, ch.cap))
                       and ch.rewards[-1] >= quantile(ch.rewards[:-1], tau))


def _sample_sd(values):
    finite = [v for v in values if math.isfinite(v)]
    if len(finite) < 2:
        return math.inf
    m = sum(finite) / len(finite)
    return math.sqrt(sum((v - m) ** 2 for v in finite) / (len(finite) - 1))


def _adaptive_rule(kappa):
    def leave(ch):
        if ch.used < 2:
            return False
        if not math.isfinite(ch.r_star):       # nothing to beat yet (Alg. 2 start): any finite best
            return math.isfinite(ch.best_r)
        gain = ch.best_r - ch.r_star
        return gain > 0 and gain > kappa * _sample_sd(ch.rewards)
    return leave


def rbf_threshold(run, n=2, tau=0.0, tau_mode="absolute", init_noises="auto", last_level="hold", min_draws=1):
    """Verifier-threshold RBF (after arXiv 2512.08985): leave a level early only when the best draw clears τ."""
    if tau_mode == "quantile" and not 0 <= tau <= 1:
        raise ValueError(f"rbf_threshold: with tau_mode='quantile' tau is a quantile q in [0, 1], got {tau!r}; "
                         f"e.g. tau=0.75")
    return rbf_run(run, _threshold_rule(float(tau), tau_mode, min_draws), n, init_noises, last_level, min_draws,
                   tau=float(tau), tau_mode=tau_mode)


def rbf_adaptive(run, n=2, kappa=1.0, init_noises="auto", last_level="hold"):
    """Noise-aware RBF (ours): accept a level's best only if its gain over r* exceeds κ·(sd of the level's draws)."""
    return rbf_run(run, _adaptive_rule(float(kappa)), n, init_noises, last_level, 1,
                   kappa=float(kappa))
