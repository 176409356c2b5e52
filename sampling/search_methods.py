"""Particle-search methods as short free functions (method spec §4; paper App. D settings as defaults).

Every method takes a `Run` (search_core) plus its own options, spends at most `run.search_budget` NFEs and returns
the final population (`Particles`); `search()` returns the candidate with the highest reward. Grid levels are
ℓ = 0 … M−1 (clocks s_0 = 1 > … > s_{M−1}); like the paper, the clean estimate x0̂ at the last evaluated level
is the answer (the transition s_{M−1} → 0 is that jump), see spec §4.8. Sizes left as None fill the budget.
Each option's own range is checked once, before a method runs (`option_specs.check_options`); the methods check
only what depends on the budget or on several options together.
"""
import math

import torch

from .sde import em_step
from .search_core import Particles, perturb, pid, renoise

__all__ = ["bon", "dps", "noise_search", "sop", "smc", "svdd", "code", "POTENTIALS", "PARTICLE_SCHEDULES",
           "TEMPERATURE_SCHEDULES", "RESAMPLING", "funnel_counts", "smc_temperatures"]

POTENTIALS = ("diff", "max", "add")
PARTICLE_SCHEDULES = ("constant", "funnel", "ramp")
TEMPERATURE_SCHEDULES = ("constant", "linear", "increasing")
RESAMPLING = ("multinomial", "systematic")


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


def _default_final(schedule, n):
    """Last level's count when final_particles is None: n//4 for the funnel, 3n for the ramp."""
    return max(1, n // 4) if schedule == "funnel" else 3 * n


def _smc_size(run, final, schedule="funnel"):
    """N from the budget: the largest n with Σ funnel_counts(n, final or its default) ≤ budget (bisection)."""
    cost = lambda m: sum(funnel_counts(m, _default_final(schedule, m) if final is None else final, run.M))
    if schedule == "funnel":
        lo, hi = max(run.search_budget // run.M, final or 0), 2 * run.search_budget // run.M + 1
    else:
        lo, hi = 0, min(run.search_budget // run.M, final or run.search_budget)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if cost(mid) <= run.search_budget else (lo, mid - 1)
    return lo


def _smc_counts(run, n, schedule, final):
    """(n, final, particles per level) of a particle schedule, validated against the budget."""
    if final is not None:
        if schedule == "constant":
            raise ValueError("smc: final_particles applies to particle_schedule='funnel' or 'ramp' only; set "
                             "particle_schedule or drop final_particles")
        _sizes(run, "smc", final_particles=final)
        if schedule == "funnel":
            run.require(final * run.M, f"final_particles·steps = {final}·{run.M}",
                        "raise nfe_budget, lower steps, or lower final_particles")
    if n is None:
        n = run.search_budget // run.M if schedule == "constant" else _smc_size(run, final, schedule)
    _sizes(run, "smc", 0, n=n)
    m = max(n, 1)
    if schedule == "constant":
        run.require(m * run.M, f"n·steps = {m}·{run.M}", "raise nfe_budget, lower steps, or lower n")
        _sizes(run, "smc", n=n)
        return n, None, [n] * run.M
    final = _default_final(schedule, m) if final is None else final
    if (final > m) if schedule == "funnel" else (final < m):
        raise ValueError(f"smc: final_particles must be {'≤' if schedule == 'funnel' else '≥'} n = {m} (the "
                         f"{schedule} only {'shrinks' if schedule == 'funnel' else 'grows'}), got {final}; "
                         f"{'lower' if schedule == 'funnel' else 'raise'} final_particles or "
                         f"{'raise' if schedule == 'funnel' else 'lower'} n")
    counts = funnel_counts(m, final, run.M)
    run.require(sum(counts), f"the {schedule}'s Σ particles per step = {' + '.join(map(str, counts))}",
                "raise nfe_budget, lower steps, n or final_particles")
    _sizes(run, "smc", n=n)
    return n, final, counts


def smc(run, n=None, beta=0.1, ess_threshold=1.0, potential="diff", particle_schedule="constant",
        final_particles=None, temperature_schedule="constant", resampling="multinomial", target_ess=None):
    """SMC / FK steering (DAS-style; paper App. D Eq. 27: N = 50, β = 0.1 App. F.2, multinomial when ESS < τ·N).

    particle_schedule 'funnel' (Su et al. 2025, arXiv 2508.12361): the population shrinks linearly from n to
    final_particles (default max(1, n//4)) over the steps, by multinomial resampling down to the next level's
    count (whatever the ESS); n fills the budget Σ n_ℓ when None. 'ramp' (ours; the funnel reversed): the population
    grows linearly from n to final_particles (default 3n; at 100 NFE and 10 steps 5 → 15), resampling up to each
    level's count, so the budget goes to the late levels where the reward of x0̂ is informative (RBF's hold rule
    makes the same bet). temperature_schedule 'linear' / 'increasing'
    (tempered SMC, arXiv 2505.23614): early rewards count less, β_ℓ = β/κ_ℓ (see smc_temperatures); β (the
    temperature: weights ∝ exp(r/β), smaller = colder = greedier) is reached at the last level.
    resampling 'systematic' (Kitagawa 1996; the low-variance scheme of the SMC literature, e.g. Doucet &
    Johansen's tutorial): one uniform u, the m points (u + i)/m on the weights' CDF, so a particle of weight w
    gets ⌊m·w⌋ or ⌈m·w⌉ copies (multinomial: any number); pair it with ess_threshold < 1 (e.g. 0.5) for the
    usual ESS-triggered SMC. Not in the paper, which uses multinomial resampling.
    target_ess (adaptive tempering, after Jasra et al. 2011, Scand. J. Stat.; not in the paper): each level's
    temperature is β_ℓ = min(β, β*_ℓ), β*_ℓ solved (bisection on log β) so that the effective sample size of the
    weights after that level's increment Δφ/β*_ℓ is target_ess·n. So β is the hottest temperature allowed and
    the target cools it further when the reward's differences are small: the paper's β = 0.1 is far too hot for
    rewards whose early differences are ~1e-4 (README "Analytic benchmark": there β*_ℓ ≪ 0.1 is used), while on
    rewards with unit steps such as −RSS β*_ℓ is hotter than 0.1 and β = 0.1 is kept. (Pure adaptive tempering,
    β_ℓ = β*_ℓ, forces ESS = target·n even when one particle is clearly best; on the playground it lost: 0.58 vs
    0.84 at 100 NFE on 50 cases.) Lower target = colder. Needs the constant temperature schedule.
    Final answer: the particle with the highest reward at the last level (not the repo's stale re-score)."""
    funnel = particle_schedule != "constant"
    n, final_particles, counts = _smc_counts(run, n, particle_schedule, final_particles)
    if target_ess is not None and temperature_schedule != "constant":
        raise ValueError("smc: target_ess chooses every level's temperature itself; use "
                         "temperature_schedule='constant' with it, or drop target_ess")
    run.resolved.update(n=n, beta=beta, ess_threshold=ess_threshold, potential=potential,
                        particle_schedule=particle_schedule, temperature_schedule=temperature_schedule,
                        resampling=resampling, target_ess=target_ess)
    if funnel:
        run.resolved.update(final_particles=final_particles, particle_counts=counts)
    betas = smc_temperatures(temperature_schedule, beta, run.M)
    if temperature_schedule != "constant" or target_ess is not None:
        run.resolved.update(temperatures=betas)
    ids = [pid(i, 0) for i in range(max(counts))]   # slot i = the i-th particle of a level (ramp: grows)
    parts, logw = run.prior(ids[:n], 0), torch.zeros(n, dtype=torch.float64)
    prev = torch.full((n,), -math.inf, dtype=torch.float64)
    for lv in range(run.M):
        if lv:
            parts = run.step(parts, ids[:len(parts)])
        k = len(parts)
        cur = parts.r if potential != "max" else torch.maximum(parts.r, prev)
        if target_ess is None:
            logw = logw + _log_increment(potential, parts.r, prev, betas[lv], betas[lv - 1] if lv else None)
        else:
            delta = _log_increment(potential, parts.r, prev, 1.0)
            betas[lv] = min(beta, _adaptive_beta(logw, delta, target_ess, beta))
            logw = logw + delta / betas[lv]
        w, ess = _ess(logw)
        m = counts[lv + 1] if lv < run.M - 1 else k
        resample = lv < run.M - 1 and (m != k or ess < ess_threshold * k * (1 - 1e-9))
        if resample:
            idx = _resample_idx(run, w, lv, m, resampling == "systematic")
            parts, cur, logw = parts.take(idx), cur[idx], torch.zeros(m, dtype=torch.float64)
        prev = cur
        extra = {"particles": k, "next_particles": m} if funnel else {}
        if temperature_schedule != "constant" or target_ess is not None:
            extra["beta"] = betas[lv]
        run.record(step=lv, s=run.grid[lv], ess=ess, resampled=resample,
                   survivors=len(set(idx.tolist())) if resample else k, **extra)
    return parts


def _adaptive_beta(logw, delta, target, beta):
    """β with ESS(logw + delta/β) ≈ target·n: bisection on log β between 1e-8 and 1e8 × the spread of the finite
    increments (ESS grows with β: hot = flat weights); `beta` when the finite increments are all equal."""
    fin = delta[torch.isfinite(delta)]
    spread = float(fin.max() - fin.min()) if len(fin) else 0.0
    if not spread > 0:
        return beta
    want = target * len(delta)
    lo, hi = math.log(spread * 1e-8), math.log(spread * 1e8)
    if _ess(logw + delta / math.exp(hi))[1] < want:
        return math.exp(hi)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if _ess(logw + delta / math.exp(mid))[1] >= want else (mid, hi)
    return math.exp(hi)


def _resample_idx(run, w, step, m=None, systematic=False):
    """Resample m (default len(w)) rows with replacement by inverse CDF on stream −1 at `step`: multinomial (m
    independent uniforms) or systematic (one uniform u, points (u + i)/m, i = 0 … m−1)."""
    cdf = torch.cumsum(w, 0)
    m = len(w) if m is None else m
    if systematic:
        u = (run.uniforms(1, -1, step) + torch.arange(m, dtype=cdf.dtype)) / m * cdf[-1]
    else:
        u = run.uniforms(m, -1, step) * cdf[-1]
    return torch.searchsorted(cdf, u).clamp_(max=len(w) - 1)


# ---- search over initial noise -------------------------------------------------------------------
def noise_search(run, k=None, radius=0.5, mode="zero_order"):
    """Search over the initial noise (Ma et al. 2025): rounds of K full trajectories; 'random' = fresh noises
    every round (Best-of-N), 'zero_order' = round 0 random, then K perturbations (x+λz)/√(1+λ²) of the best noise
    so far (the pivot moves only on strict improvement). Deterministic paths need sde=False."""
    k = min(10, run.search_budget // run.M) if k is None else k
    _sizes(run, "noise_search", 0, k=k)
    run.require(max(k, 1) * run.M, f"k·steps = {max(k, 1)}·{run.M}", "raise nfe_budget, lower steps, or lower k")
    _sizes(run, "noise_search", k=k)
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
def _sop_rounds(t0, delta_f, delta_b, max_rounds=math.inf):
    """(s, f, s') per round: re-noise s → f = s + Δf, then ODE back to s' = max(f − Δb, 0); until s' = 0.

    Stops with ValueError as soon as more than `max_rounds` (what the budget affords) would be needed, so a tiny
    Δb − Δf costs at most max_rounds iterations, never a list of millions of rounds."""
    if not delta_f < delta_b:   # each one's range is checked before (option_specs); their order only here
        raise ValueError(f"sop: need 0 < t0 < 1 and 0 < delta_f < delta_b (got t0={t0}, delta_f={delta_f}, "
                         f"delta_b={delta_b}); the paper uses t0=0.12, delta_f=0.78, delta_b=0.81")
    out, s = [], float(t0)
    while s > 0:
        if len(out) >= max_rounds:
            raise ValueError(f"sop: t0={t0}, delta_f={delta_f}, delta_b={delta_b} need more than {len(out)} "
                             f"re-noising rounds, more than nfe_budget affords; raise delta_b − delta_f (the paper: "
                             f"0.78 and 0.81 give 4 rounds from t0 = 0.12), raise nfe_budget or lower n or k")
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
    _sizes(run, "sop", n=n, k=k)
    rounds = _sop_rounds(t0, delta_f, delta_b, max(0, (run.search_budget // n - 1) // k))
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
