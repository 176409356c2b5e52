"""Rollover Budget Forcing (paper §6, Algorithm 2; official code `rbf/rbf.py`, method spec §4.6).

N chains run independently (evaluated in lock-step, one draw per chain per batch). At level ℓ a chain draws
proposals one at a time from the SDE kernel p(x̄_{ℓ+1} | x̄_ℓ) and
  * accepts the first draw whose reward beats its best-so-far r* (strict >), moving on and rolling the unused
    quota over to the next level (refund = quota − draws used, Alg. 2);
  * when the quota runs out without improvement, moves on with the level's best draw (r* is not lowered).

Options (default first); the defaults reproduce the official code, which produced the paper's numbers:
  init_noises = "auto"  the code's initial best-of-K0 noise pick, counted in the budget, with K0 scaled to the
                        budget: K0 = ⌊budget/20⌋ per chain (25 at 500 NFE, where it equals the code's value; 5 at
                        100 NFE), then Q = ⌊(B − K0·N)/(M·N)⌋ per level. The official code uses K0 = 25 at every
                        budget; we scale it because 25·N initial noises would take half of a 100-NFE budget
                        (Q = 2 per level) and all of a 50-NFE one. If a chain could not also afford one draw per
                        level, K0 is lowered to ⌊B/N⌋ − M, and below 1 the start is Alg. 2's single noise (None).
                        "code" = the code's fixed K0 = 25, with the same too-small-budget fallback.
                        None = Alg. 2: level 0 is a level like the others; its first finite draw beats r* = −inf,
                        so a chain starts from one noise and rolls Q − 1 over, Q = ⌊(B/N)/M⌋. An int sets K0.
  last_level = "hold"   the code's rule: chains stop advancing before the last level (grid index M−2 in the
                        code's indexing), so every remaining draw targets the last level and the best is returned.
                        "stop" = Alg. 2 literally: reaching the last level ends the chain, and an early acceptance
                        there leaves the rest of its budget unspent (reported in the trace).
  min_draws = 1         Alg. 2. Our extension: a level may be left only after min(min_draws, quota) draws (then
                        with the level's best if it beats r*). Useful when tiny, noisy reward differences make
                        "beats r*" a coin flip at the noisy levels (README.md, "Measured behaviour").
Deviation from the code: the loop spends the whole budget (the code stops when nfe + N ≥ budget, e.g. 498/500).

The loop (`rbf_run`) takes the acceptance rule as a function, `leave(chain) -> bool` ("may the chain leave its
level now, with the level's best draw?"), asked after every draw; quota exhaustion always moves the chain on.
rbf's rule is Alg. 2's (with min_draws); the variants in search_rbf_variants.py swap in their own.
"""
import math

from .search_core import Particles, pid

__all__ = ["rbf", "rbf_quotas", "rbf_run", "CODE_INIT_NOISES"]

CODE_INIT_NOISES = 25   # the official code's initial noises per chain, at every budget


def rbf_quotas(budget, n, steps, init_noises=None):
    """(Q, per-chain budget): Q = ⌊(B/N)/M⌋ (Alg. 2) or ⌊(B − K0·N)/(M·N)⌋ after a K0 noise pick (code)."""
    per_chain = budget // n
    if init_noises:
        return (budget - init_noises * n) // (steps * n), per_chain
    return per_chain // steps, per_chain


class _Chain:
    """Bookkeeping of one chain: level of its state, best-so-far r*, quota (cap) and draws used at this level."""

    def __init__(self, b, cap, level=-1, r_star=-math.inf, drawn=0):
        self.b, self.level, self.r_star, self.cap, self.used, self.drawn = b, level, r_star, cap, 0, drawn
        self.state, self.best, self.done = None, None, False
        self.rewards = []          # rewards of this level's draws so far, in draw order

    @property
    def best_r(self):
        return float(self.best.r[0])


def _advance(run, ch, p, accepted, Q, M, hold):
    """Move chain `ch` to the draw `p` (accepted or the level's best); roll over cap − used if accepted."""
    refund = ch.cap - ch.used if accepted else 0
    run.record(step=ch.level + 1, s=run.grid[ch.level + 1], chain=ch.b, draws=ch.used, quota=ch.cap,
               accepted=accepted, rolled_over=refund, reward=float(p.r[0]), r_star=ch.r_star)
    ch.state, ch.level, ch.best, ch.used, ch.rewards = p, ch.level + 1, None, 0, []
    ch.cap = refund + Q
    ch.done = ch.level == M - 1 and not hold


def _update(run, ch, p, Q, M, hold, leave):
    """One draw p (a 1-row Particles) of chain ch: keep the level's best, then leave the level if the rule says so
    (accepted: the unused quota rolls over; r* becomes max(r*, best)) or if the quota is spent (r* kept)."""
    ch.used += 1
    ch.drawn += 1
    r = float(p.r[0])
    ch.rewards.append(r)
    if ch.best is None or r > ch.best_r:
        ch.best = p
    if hold and ch.level + 1 == M - 1:
        ch.r_star = max(ch.r_star, r)
    elif leave(ch):
        ch.r_star = max(ch.r_star, ch.best_r)
        _advance(run, ch, ch.best, True, Q, M, hold)
    elif ch.used >= ch.cap:
        _advance(run, ch, ch.best, False, Q, M, hold)


def alg2_rule(min_draws=1):
    """Alg. 2's acceptance (min_draws = 1): the level's best beats r* (strict >), after min(min_draws, quota) draws."""
    return lambda ch: ch.used >= min(min_draws, ch.cap) and ch.best_r > ch.r_star


def _draw(run, chains):
    """One proposal per chain (fresh noise before level 0, else an SDE step from its state); key (pid(b, j), level)."""
    fresh = [c for c in chains if c.level < 0]
    moving = [c for c in chains if c.level >= 0]
    out = {}
    if fresh:
        for c, p in zip(fresh, _rows(run.prior([pid(c.b, c.drawn) for c in fresh], 0))):
            out[c.b] = p
    if moving:
        parents = Particles.cat([c.state for c in moving])
        for c, p in zip(moving, _rows(run.step(parents, [pid(c.b, c.drawn) for c in moving]))):
            out[c.b] = p
    return [out[c.b] for c in chains]


def _rows(parts):
    return [parts.take([i]) for i in range(len(parts))]


def _init_pick(run, n, k0, Q):
    """Official-code start: K0 initial noises per chain evaluated as one batch, the best kept (K0·N NFE)."""
    parts = run.prior([pid(b, j) for b in range(n) for j in range(k0)], 0)
    chains = []
    for b in range(n):
        j = int(parts.r[b * k0:(b + 1) * k0].argmax())
        ch = _Chain(b, Q, level=0, drawn=k0)
        ch.state = parts.take([b * k0 + j])
        ch.r_star = float(ch.state.r[0])
        run.record(step=0, s=run.grid[0], chain=b, draws=k0, quota=k0, accepted=False, rolled_over=0,
                   reward=ch.r_star, r_star=ch.r_star)
        chains.append(ch)
    return chains


def resolve_init_noises(run, n, init_noises):
    """K0 (or None) from the init_noises option: 'auto' = ⌊B/20⌋, 'code' = 25, each lowered to ⌊B/N⌋ − M so a
    chain can still afford one draw per level (None below 1); None = Alg. 2's single noise; an int is taken as is."""
    if init_noises in ("auto", "code"):
        want = run.search_budget // 20 if init_noises == "auto" else CODE_INIT_NOISES
        k0 = (min(want, run.search_budget // n - run.M) if run.M > 1
              else run.search_budget // n if init_noises == "auto" else min(want, run.search_budget // n))
        return k0 if k0 >= 1 else None
    return init_noises


def rbf_run(run, leave, n=2, init_noises="auto", last_level="hold", min_draws=1, **resolved):
    """The RBF loop (Alg. 2 bookkeeping, the code's start and hold rule) with acceptance rule `leave(chain)`."""
    init_noises = resolve_init_noises(run, n, init_noises)
    M, hold = run.M, last_level == "hold"
    Q, per_chain = rbf_quotas(run.search_budget, n, M, init_noises)
    k0 = init_noises or 0
    per = k0 + M if k0 and M > 1 else max(k0, M)   # a pick of K0 plus a quota ≥ 1 per level
    run.require(n * per, f"n·({'init_noises + ' if k0 and M > 1 else ''}steps) = {n}·({per})",
                "raise nfe_budget, lower steps, n or init_noises")
    run.resolved.update(n=n, init_noises=init_noises, last_level=last_level, min_draws=min_draws, quota=Q,
                        per_chain=per_chain, **resolved)
    chains = _init_pick(run, n, k0, Q) if k0 else [_Chain(b, Q) for b in range(n)]
    for ch in chains:
        ch.done = ch.level == M - 1
    while True:
        active = [c for c in chains if not c.done and c.drawn < per_chain]
        if not active:
            break
        for ch, p in zip(active, _draw(run, active)):
            _update(run, ch, p, Q, M, hold, leave)
    for ch in chains:
        if not ch.done and per_chain - ch.drawn == 0 and ch.best is not None:
            run.record(step=ch.level + 1, s=run.grid[ch.level + 1], chain=ch.b, draws=ch.used, quota=ch.cap,
                       accepted=False, rolled_over=0, reward=ch.best_r, r_star=ch.r_star, final=True)
        unspent = per_chain - ch.drawn
        if unspent:
            run.record(step=ch.level, s=run.grid[ch.level], chain=ch.b, unspent=unspent)
    return Particles.cat([c.best if c.best is not None else c.state for c in chains])


def rbf(run, n=2, init_noises="auto", last_level="hold", min_draws=1):
    """Rollover Budget Forcing (paper Alg. 2; N = 2 chains): adaptive per-level draws with quota rollover."""
    return rbf_run(run, alg2_rule(min_draws), n, init_noises, last_level, min_draws)
