"""Particle-search methods as short free functions (method spec §4; paper App. D settings as defaults).

Every method takes a `Run` (search_core) plus its own options, spends at most `run.search_budget` NFEs and returns
the final population (`Particles`); `search()` returns the candidate with the highest reward. Grid levels are
ℓ = 0 … M−1 (clocks s_0 = 1 > … > s_{M−1}); like the paper, the clean estimate x0̂ at the last evaluated level
is the answer (the transition s_{M−1} → 0 is that jump), see spec §4.8. Sizes left as None fill the budget.
"""
import math

import torch

from .sde import em_step
from .search_core import Particles, perturb, pid, renoise

__all__ = ["bon", "dps", "noise_search", "sop", "smc", "svdd", "code", "POTENTIALS", "PARTICLE_SCHEDULES",
           "TEMPERATURE_SCHEDULES", "funnel_counts", "smc_temperatures"]

POTENTIALS = ("diff", "max", "add")
PARTICLE_SCHEDULES = ("constant", "funnel")
TEMPERATURE_SCHEDULES = ("constant", "linear", "increasing")


# ---- selection helpers -------------------------------------------------------------------------
def _categorical(run, logits, stream, step):
    """One draw per row of logits [n, k] (inverse CDF on the reserved noise stream; −inf/NaN-safe)."""
    logits = torch.nan_to_num(logits, nan=-math.inf)
    dead = torch.isneginf(logits).all(1, keepdim=True)
    p = torch.softmax(torch.where(dead, torch.zeros_like(logits), logits), dim=1)
    cdf = torch.cumsum(p, 1)
    u = run.uniforms(logits.shape[0], stream, step)[:, None] * cdf[:, -1:]
    return torch.searchsorted(cdf, u).clamp_(max=logits.shape[1] - 1).reshape(-1)


def _select(run, r, beta, step, stream=-2):
    """Per-chain pick among its K particles (r: [n, k]): argmax (β = 0, SVDD's greedy rule) or ~ softmax(r/β)."""
    n, k = r.shape
    j = r.argmax(1) if beta == 0 else _categorical(run, r / beta, stream, step)
    return torch.arange(n) * k + j


def _sizes(run, what, low=1, **need):
    """Validate integer sizes ≥ low, e.g. _sizes(run, 'svdd', n=2, k=3)."""
    for name, v in need.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < low:
            raise ValueError(f"{what}: {name} must be a positive integer, got {v!r}")


# ---- blockwise greedy family: BoN, DPS, SVDD, CoDe ------------------------------------------------
def _blockwise(run, n, k, block, beta=0.0):
    """N chains; per block of L levels each chain's K children evolve independently, then one is kept per chain.

    block = 1 is SVDD (Li et al. 2024; paper App. D Eq. 28–29), block = L is CoDe (Singh et al. 2025), K = 1 and
    block = M is Best-of-N. At level 0 the K children are K fresh initial noises, so no evaluation is wasted."""
    M, state = run.M, None
    ids = [pid(b, j) for b in range(n) for j in range(k)]
    for a in range(0, M, block):
        end = min(a + block, M)
        if a == 0:
            parts = run.prior(ids, 0, score=end == 1)
        else:
            parts = run.step(state.take(torch.arange(n).repeat_interleave(k)), ids, score=end == a + 1)
        for lv in range(a + 1, end):
            parts = run.step(parts, ids, score=lv == end - 1)
        state = parts.take(_select(run, parts.r.reshape(n, k), beta, end - 1)) if k > 1 else parts
        run.record(step=end - 1, s=run.grid[end - 1], rewards=state.r.tolist())
    return state


def bon(run, n=None):
    """Best-of-N (paper App. D: N = 50 at 500 NFE): N independent trajectories, scored once at the end."""
    n = run.search_budget // run.M if n is None else n
    _sizes(run, "bon", 0, n=n)
    run.require(max(n, 1) * run.M, f"n·steps = {max(n, 1)}·{run.M}", "raise nfe_budget, lower steps, or lower n")
    _sizes(run, "bon", n=n)
    run.resolved.update(n=n)
    return _blockwise(run, n, 1, run.M)


def dps(run, n=1):
    """Gradient guidance alone (DPS-style, paper App. E Eq. 30): n guided SDE trajectories (best returned)."""
    if run.scale <= 0:
        raise ValueError("dps: needs guidance_scale > 0 (e.g. guidance_scale=1.0) and a differentiable reward")
    return bon(run, n)


def svdd(run, n=2, k=None, beta=0.0):
    """SVDD (paper App. D: N = 2 chains, K = 25 at 500 NFE): per level, K proposals per chain, keep the best."""
    return _greedy(run, n, k, 1, beta, "svdd")


def code(run, n=2, k=None, block=2, beta=0.0):
    """CoDe (paper App. D: N = 2, K = 25, L = 2): K proposals per chain run L levels, then keep the best."""
    return _greedy(run, n, k, block, beta, "code")


def _greedy(run, n, k, block, beta, _name):
    """Size checks and defaults (K fills the budget: 25 at 500 NFE, N = 2, M = 10) for SVDD and CoDe."""
    k = run.search_budget // (n * run.M) if (k is None and isinstance(n, int) and n > 0) else k
    _sizes(run, _name, n=n, block=block)
    _sizes(run, _name, 0, k=k)
    run.require(n * max(k, 1) * run.M, f"n·k·steps = {n}·{max(k, 1)}·{run.M}",
                "raise nfe_budget, lower steps, n or k")
    _sizes(run, _name, k=k)
    if beta < 0:
        raise ValueError(f"{_name}: beta must be ≥ 0 (0 = argmax), got {beta}")
    run.resolved.update(n=n, k=k, beta=beta, **({} if _name == "svdd" else {"block": block}))
    return _blockwise(run, n, k, block, beta)


# ---- SMC ---------------------------------------------------------------------------------------
def _log_increment(potential, r, prev, beta, beta_prev=None):
    """log G_t of the FK-steering potentials (spec §4.4): diff (r − r_prev)/β, max (Δ running max)/β, add r/β.

    At the first level (prev = −inf) every potential is r/β; a non-finite reward gives log-weight −inf. Under a
    temperature schedule (beta_prev = the previous level's β, ≠ β) diff and max are the tempered ratios of
    consecutive targets exp(φ_t/β_t): φ_t/β_t − φ_{t−1}/β_{t−1} (φ = r, or the running max); add stays r/β_t."""
    first = ~torch.isfinite(prev)
    base = torch.where(first, torch.zeros_like(prev), prev)
    if beta_prev is not None and beta_prev != beta and potential != "add":
        phi = r if potential == "diff" else torch.maximum(r, base)
        inc = torch.where(first, r / beta, phi / beta - base / beta_prev)
    elif potential == "diff":
        inc = torch.where(first, r, r - base) / beta
    elif potential == "max":
        inc = torch.where(first, r, torch.maximum(r, base) - base) / beta
    else:
        inc = r / beta
    return torch.where(torch.isfinite(r), torch.nan_to_num(inc, nan=0.0), torch.full_like(inc, -math.inf))


def _ess(logw):
    """Normalised weights and effective sample size (Σw)²/Σw²; all −inf → uniform."""
    logw = torch.nan_to_num(logw, nan=-math.inf)
    if torch.isneginf(logw).all():
        logw = torch.zeros_like(logw)
    w = torch.softmax(logw, 0)
    return w, float(1.0 / (w * w).sum())


def funnel_counts(n, final, steps):
    """Particles per level of the Funnel schedule (arXiv 2508.12361): n at level 0 down to `final` at the last,
    linearly, n_ℓ = n − ⌊(n − final)·ℓ/(M − 1) + ½⌋ (integer arithmetic; [n] for a single step)."""
    d = steps - 1
    return [n - ((n - final) * lv * 2 + d) // (2 * d) for lv in range(steps)] if d else [n]


def smc_temperatures(schedule, beta, steps):
    """Per-level temperature β_ℓ. The tempered schedules (arXiv 2505.23614; the Funnel paper's down-weighting of
    early rewards, 2508.12361) ramp the reward's weight 1/β_ℓ = κ_ℓ/β up to 1/β at the last level:
    κ_ℓ = (ℓ+1)/M ('linear') or ((ℓ+1)/M)² ('increasing'), i.e. β_ℓ = β/κ_ℓ; 'constant' is β at every level."""
    if schedule == "constant":
        return [beta] * steps
    p = 1 if schedule == "linear" else 2
    return [beta / ((lv + 1) / steps) ** p for lv in range(steps)]


def _smc_size(run, final):
    """Funnel N from the budget: the largest n with Σ funnel_counts(n, final or max(1, n//4)) ≤ budget."""
    cost = lambda m: sum(funnel_counts(m, max(1, m // 4) if final is None else final, run.M))
    lo, hi = max(run.search_budget // run.M, final or 0), 2 * run.search_budget // run.M + 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if cost(mid) <= run.search_budget else (lo, mid - 1)
    return lo


def smc(run, n=None, beta=0.1, ess_threshold=1.0, potential="diff", particle_schedule="constant",
        final_particles=None, temperature_schedule="constant"):
    """SMC / FK steering (DAS-style; paper App. D Eq. 27: N = 50, β = 0.1 App. F.2, multinomial when ESS < τ·N).

    particle_schedule 'funnel' (Su et al. 2025, arXiv 2508.12361): the population shrinks linearly from n to
    final_particles (default max(1, n//4)) over the steps, by multinomial resampling down to the next level's
    count (whatever the ESS); n fills the budget Σ n_ℓ when None. temperature_schedule 'linear' / 'increasing'
    (tempered SMC, arXiv 2505.23614): early rewards count less, β_ℓ = β/κ_ℓ (see smc_temperatures); β (the
    temperature: weights ∝ exp(r/β), smaller = colder = greedier) is reached at the last level.
    Final answer: the particle with the highest reward at the last level (not the repo's stale re-score)."""
    if particle_schedule not in PARTICLE_SCHEDULES:
        raise ValueError(f"smc: unknown particle_schedule {particle_schedule!r}; use one of "
                         f"{', '.join(PARTICLE_SCHEDULES)}")
    if temperature_schedule not in TEMPERATURE_SCHEDULES:
        raise ValueError(f"smc: unknown temperature_schedule {temperature_schedule!r}; use one of "
                         f"{', '.join(TEMPERATURE_SCHEDULES)}")
    funnel = particle_schedule == "funnel"
    if final_particles is not None:
        if not funnel:
            raise ValueError("smc: final_particles applies to particle_schedule='funnel' only; set "
                             "particle_schedule='funnel' or drop final_particles")
        _sizes(run, "smc", final_particles=final_particles)
        run.require(final_particles * run.M, f"final_particles·steps = {final_particles}·{run.M}",
                    "raise nfe_budget, lower steps, or lower final_particles")
    if n is None:
        n = _smc_size(run, final_particles) if funnel else run.search_budget // run.M
    _sizes(run, "smc", 0, n=n)
    if funnel:
        m = max(n, 1)
        final_particles = max(1, m // 4) if final_particles is None else final_particles
        if final_particles > m:
            raise ValueError(f"smc: final_particles must be ≤ n = {m} (the funnel only shrinks), got "
                             f"{final_particles}; lower final_particles or raise n")
        counts = funnel_counts(m, final_particles, run.M)
        run.require(sum(counts), f"the funnel's Σ particles per step = {' + '.join(map(str, counts))}",
                    "raise nfe_budget, lower steps, n or final_particles")
    else:
        run.require(max(n, 1) * run.M, f"n·steps = {max(n, 1)}·{run.M}",
                    "raise nfe_budget, lower steps, or lower n")
        counts = [n] * run.M
    _sizes(run, "smc", n=n)
    if not beta > 0:
        raise ValueError(f"smc: beta (temperature) must be > 0 (math.inf = ignore the reward), got {beta}")
    if potential not in POTENTIALS:
        raise ValueError(f"smc: unknown potential {potential!r}; use one of {', '.join(POTENTIALS)}")
    if not 0 <= ess_threshold <= 1:
        raise ValueError(f"smc: ess_threshold is a fraction of n in [0, 1], got {ess_threshold}")
    run.resolved.update(n=n, beta=beta, ess_threshold=ess_threshold, potential=potential,
                        particle_schedule=particle_schedule, temperature_schedule=temperature_schedule)
    if funnel:
        run.resolved.update(final_particles=final_particles, particle_counts=counts)
    betas = smc_temperatures(temperature_schedule, beta, run.M)
    if temperature_schedule != "constant":
        run.resolved.update(temperatures=betas)
    ids = [pid(i, 0) for i in range(n)]
    parts, logw = run.prior(ids, 0), torch.zeros(n, dtype=torch.float64)
    prev = torch.full((n,), -math.inf, dtype=torch.float64)
    for lv in range(run.M):
        if lv:
            parts = run.step(parts, ids[:len(parts)])
        k = len(parts)
        cur = parts.r if potential != "max" else torch.maximum(parts.r, prev)
        logw = logw + _log_increment(potential, parts.r, prev, betas[lv], betas[lv - 1] if lv else None)
        w, ess = _ess(logw)
        m = counts[lv + 1] if lv < run.M - 1 else k
        resample = lv < run.M - 1 and (m < k or ess < ess_threshold * k * (1 - 1e-9))
        if resample:
            idx = _resample_idx(run, w, lv, m)
            parts, cur, logw = parts.take(idx), cur[idx], torch.zeros(m, dtype=torch.float64)
        prev = cur
        extra = {"particles": k, "next_particles": m} if funnel else {}
        if temperature_schedule != "constant":
            extra["beta"] = betas[lv]
        run.record(step=lv, s=run.grid[lv], ess=ess, resampled=resample,
                   survivors=len(set(idx.tolist())) if resample else k, **extra)
    return parts


def _resample_idx(run, w, step, m=None):
    """Multinomial resampling with replacement of m (default len(w)) rows (inverse CDF on stream −1 at `step`)."""
    cdf = torch.cumsum(w, 0)
    u = run.uniforms(len(w) if m is None else m, -1, step) * cdf[-1]
    return torch.searchsorted(cdf, u).clamp_(max=len(w) - 1)


# ---- search over initial noise -------------------------------------------------------------------
def noise_search(run, k=None, radius=0.5, mode="zero_order"):
    """Search over the initial noise (Ma et al. 2025): rounds of K full trajectories; 'random' = fresh noises
    every round (Best-of-N), 'zero_order' = round 0 random, then K perturbations (x+λz)/√(1+λ²) of the best noise
    so far (the pivot moves only on strict improvement). Deterministic paths need sde=False."""
    if mode not in ("zero_order", "random"):
        raise ValueError(f"noise_search: unknown mode {mode!r}; use 'zero_order' or 'random'")
    k = min(10, run.search_budget // run.M) if k is None else k
    _sizes(run, "noise_search", 0, k=k)
    run.require(max(k, 1) * run.M, f"k·steps = {max(k, 1)}·{run.M}", "raise nfe_budget, lower steps, or lower k")
    _sizes(run, "noise_search", k=k)
    if not radius > 0:
        raise ValueError(f"noise_search: radius must be > 0, got {radius}")
    rounds = run.search_budget // (k * run.M)
    run.resolved.update(k=k, radius=radius, mode=mode, rounds=rounds)
    finals, pivot = [], None
    for q in range(rounds):
        ids = [pid(q, j) for j in range(k)]
        if pivot is None or mode == "random":
            parts = run.prior(ids, 0, score=run.M == 1)
        else:
            x = perturb(pivot[0].expand(k, *run.shape), radius, run.noise(ids, 0))
            ops = [pivot[1] + (("perturb", p, 0, float(radius)),) for p in ids]
            parts = run.evaluate(x, run.grid[0], 0, ops, score=run.M == 1)
        start = (parts.x.clone(), list(parts.lineage))
        for lv in range(1, run.M):
            parts = run.step(parts, ids, score=lv == run.M - 1)
        j = int(parts.r.argmax())
        if pivot is None or float(parts.r[j]) > pivot[2]:
            pivot = (start[0][j:j + 1], start[1][j], float(parts.r[j]))
        finals.append(parts)
        run.record(step=q, s=run.grid[run.M - 1], pivot_reward=pivot[2], round_best=float(parts.r[j]))
    return Particles.cat(finals)


# ---- Search over Paths -------------------------------------------------------------------------
def _sop_rounds(t0, delta_f, delta_b):
    """(s, f, s') per round: re-noise s → f = s + Δf, then ODE back to s' = max(f − Δb, 0); until s' = 0."""
    if not 0 < t0 < 1 or not 0 < delta_f < delta_b:
        raise ValueError(f"sop: need 0 < t0 < 1 and 0 < delta_f < delta_b (got t0={t0}, delta_f={delta_f}, "
                         f"delta_b={delta_b}); the paper uses t0=0.12, delta_f=0.78, delta_b=0.81")
    out, s = [], float(t0)
    while s > 0:
        f = min(s + delta_f, 1.0)
        s_new = max(f - delta_b, 0.0)
        s_new = 0.0 if s_new < 1e-9 else s_new
        out.append((s, f, s_new))
        s = s_new
    return out


def _ode_segment(run, parts, s_from, s_to, steps, level, score):
    """Euler ODE from s_from (already evaluated) toward s_to in `steps` steps: steps − 1 new evaluations; the
    last Euler step (to s_to) is left pending, as SoP scores the x0̂ of the last evaluated point (spec §4.5)."""
    h = (s_from - s_to) / steps
    for j in range(1, steps):
        s, s_next = s_from - (j - 1) * h, s_from - j * h
        x = em_step(parts.x, parts.x0, parts.eps, s, s_next, run.ip, 0.0)
        ops = [lin + (("ode", s, s_next),) for lin in parts.lineage]
        parts = run.evaluate(x, s_next, level, ops, score=score and j == steps - 1)
    return parts, s_from - (steps - 1) * h


def sop(run, n=2, k=5, t0=0.12, delta_f=0.78, delta_b=0.81, ode_steps=None, selection="global"):
    """Search over Paths (Ma et al. 2025; paper App. D: N = 2, K = 5, t0 = 0.12, Δf = 0.78, Δb = 0.81).

    ODE from s = 1 to t0; each round re-noises every particle K times to s + Δf, runs the ODE back to s + Δf − Δb
    and keeps the top N of the N·K (global, as in the paper; 'per_parent' = the repo's per-parent best).
    Clocks are on the sampling interpolant; proposals are always ODE (steps/grid/sde do not apply)."""
    if selection not in ("global", "per_parent"):
        raise ValueError(f"sop: unknown selection {selection!r}; use 'global' or 'per_parent'")
    rounds = _sop_rounds(t0, delta_f, delta_b)
    _sizes(run, "sop", n=n, k=k)
    per_step = n * (1 + len(rounds) * k)
    ode_steps = run.search_budget // per_step if ode_steps is None else ode_steps
    _sizes(run, "sop", 0, ode_steps=ode_steps)
    run.require(per_step * max(ode_steps, 1), f"ode_steps·n·(1 + rounds·k) = {max(ode_steps, 1)}·{per_step}",
                "raise nfe_budget or lower n, k or ode_steps")
    _sizes(run, "sop", ode_steps=ode_steps)
    if run.scale > 0:
        raise ValueError("sop: guidance_scale is not supported (SoP's paths are ODE); use svdd, rbf, smc or dps")
    run.resolved.update(n=n, k=k, t0=t0, delta_f=delta_f, delta_b=delta_b, ode_steps=ode_steps, selection=selection,
                        rounds=len(rounds))
    parts = run.prior([pid(b, 0) for b in range(n)], 0, score=False)
    parts, s_last = _ode_segment(run, parts, run.grid[0], t0, ode_steps, 0, False)
    for q, (s, f, s_new) in enumerate(rounds):
        parents = parts.take(torch.arange(n).repeat_interleave(k))
        ids = [pid(b, j) for b in range(n) for j in range(k)]
        x = em_step(parents.x, parents.x0, parents.eps, s_last, s, run.ip, 0.0)
        x = renoise(x, s, f, run.ip, run.noise(ids, q + 1))
        ops = [lin + (("ode", s_last, s), ("renoise", p, q + 1, s, f)) for lin, p in zip(parents.lineage, ids)]
        kids = run.evaluate(x, f, q + 1, ops, score=ode_steps == 1)
        kids, s_last = _ode_segment(run, kids, f, s_new, ode_steps, q + 1, True)
        r = kids.r.reshape(n, k)
        keep = (torch.sort(kids.r, descending=True, stable=True).indices[:n] if selection == "global"
                else torch.arange(n) * k + r.argmax(1))
        parts = kids.take(keep)
        run.record(step=q, s=s_last, renoise_to=f, rewards=parts.r.tolist())
    return parts
