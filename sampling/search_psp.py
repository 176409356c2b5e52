"""Progressive Seed Pruning (PSP; ECCV 2026, arXiv 2607.21591).

Start 2N seeds on the SDE (or ODE) in parallel, score their clean estimates x0̂, keep the best N after a fraction
f1 of the steps and the best ⌈N/2⌉ of those after a fraction f2 (published defaults f1 = 0.25, f2 = 0.5); the
survivors run on to the last level and the best final candidate is returned. Cost with M steps:

    NFE = 2N·k1 + N·(k2 − k1) + ⌈N/2⌉·(M − k2),   k_i = ⌈f_i·M⌉ (levels evaluated before prune i)

Departures from the source (this package's conventions, not the paper's):
  * the prune points are grid levels: prune i happens after the first k_i = ⌈f_i·M⌉ levels have been evaluated
    (at least a fraction f_i of the steps done; 3 and 5 of 10 steps at the defaults). With k2 = M there is no
    second prune (nothing left to save) and the final population is N; with k1 = k2 the two prunes coincide.
  * the last stage keeps ⌈N/2⌉ (not N/2), so an odd N still leaves at least one survivor.
  * N is sized from the NFE budget (the largest N whose cost fits, like BoN's and SMC's N = ⌊B/M⌋) unless given.
  * pruning is by the reward of x0̂ at the prune level alone; ties go to the lower particle id, so a run is
    deterministic. Rewards are computed only where they are used (the prune levels and the last level).
  * survivors keep their particle ids and their own noise keys, so a surviving trajectory is exactly the BoN
    trajectory of the same seed (pid(i, 0), as in bon and smc) and `replay` regenerates it.
"""
import math

from .search_core import pid
from .search_methods import _sizes

__all__ = ["psp", "psp_counts", "psp_levels"]


def psp_levels(steps, prune_at=(0.25, 0.5)):
    """(k1, k2): levels evaluated before each prune, k_i = ⌈f_i·M⌉ (1 ≤ k1 ≤ k2 ≤ M for 0 < f1 < f2 < 1)."""
    return tuple(max(1, math.ceil(float(f) * steps - 1e-9)) for f in prune_at)


def psp_counts(n, steps, prune_at=(0.25, 0.5)):
    """Particles evaluated at each grid level: 2N before k1, N before k2, ⌈N/2⌉ after; sum = the NFE cost."""
    k1, k2 = psp_levels(steps, prune_at)
    return [2 * n if lv < k1 else n if lv < k2 else (n + 1) // 2 for lv in range(steps)]


def _check_prune_at(prune_at):
    try:
        f1, f2 = (float(f) for f in prune_at)
    except (TypeError, ValueError):
        f1 = f2 = math.nan
    if not 0 < f1 < f2 < 1:
        raise ValueError(f"psp: prune_at must be two increasing fractions of the steps in (0, 1), "
                         f"e.g. (0.25, 0.5) (the paper's), got {prune_at!r}")
    return f1, f2


def _fit(run, prune_at):
    """Largest N whose cost Σ psp_counts fits the search budget (0 if not even N = 1 does)."""
    k1, k2 = psp_levels(run.M, prune_at)
    n = 2 * run.search_budget // (4 * k1 + 2 * (k2 - k1) + (run.M - k2)) + 1   # cost ≥ N·(that)/2
    while n > 0 and sum(psp_counts(n, run.M, prune_at)) > run.search_budget:
        n -= 1
    return n


def _prune(run, parts, ids, m, lv):
    """Keep the m highest rewards (ties → lower particle id), in id order; record kept and pruned slots."""
    r = parts.r.tolist()
    best = sorted(range(len(parts)), key=lambda i: (-r[i], ids[i]))[:m]
    keep = sorted(best, key=lambda i: ids[i])
    gone = sorted(set(range(len(parts))) - set(keep), key=lambda i: ids[i])
    run.record(step=lv, s=run.grid[lv], particles=len(parts), kept=[ids[i] >> 32 for i in keep],
               pruned=[ids[i] >> 32 for i in gone], rewards=[r[i] for i in keep])
    return parts.take(keep), [ids[i] for i in keep]


def psp(run, n=None, prune_at=(0.25, 0.5)):
    """Progressive Seed Pruning (arXiv 2607.21591): 2N seeds, prune to N at f1·steps and to ⌈N/2⌉ at f2·steps."""
    f = _check_prune_at(prune_at)
    n = _fit(run, f) if n is None else n
    _sizes(run, "psp", 0, n=n)
    k1, k2 = psp_levels(run.M, f)
    m = max(n, 1)
    run.require(sum(psp_counts(m, run.M, f)),
                f"2n·k1 + n·(k2 − k1) + ⌈n/2⌉·(steps − k2) = 2·{m}·{k1} + {m}·{k2 - k1} + {(m + 1) // 2}·"
                f"{run.M - k2}", "raise nfe_budget, lower steps, or lower n")
    _sizes(run, "psp", n=n)
    counts = psp_counts(n, run.M, f)
    run.resolved.update(n=n, prune_at=list(f), prune_levels=[k1, k2], seeds=2 * n, particle_counts=counts)
    ids = [pid(i, 0) for i in range(2 * n)]
    last = run.M - 1
    scored = [lv == last or counts[lv + 1] < counts[lv] for lv in range(run.M)]
    parts = run.prior(ids, 0, score=scored[0])
    for lv in range(run.M):
        if lv:
            parts = run.step(parts, ids, score=scored[lv])
        if lv < last and counts[lv + 1] < len(parts):
            parts, ids = _prune(run, parts, ids, counts[lv + 1], lv)
        else:
            run.record(step=lv, s=run.grid[lv], particles=len(parts))
    return parts
