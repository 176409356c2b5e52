"""Shared machinery of the particle-search methods (method spec §4): budgeted batched evaluation, SDE proposals,
re-noising, resampling draws and per-particle lineage.

A *particle* is a latent x̄ at clock s on the sampling interpolant together with one model evaluation there
(x0̂, ε̂, reward r, and ∇_x r(x0̂(x)) when gradient guidance is on). One evaluation of one particle = 1 NFE.

Clocks and schedule coefficients are float64 (the official code quantises the VP clock to bf16 in places; we do
not). Randomness: every draw has a key (particle id, step), its noise is `particle_noise(shape, seed, [pid], step)`,
so a particle never depends on batching or on the order in which other particles are evaluated. Each particle
keeps its *lineage*: the list of operations (with their noise keys) that produced it from nothing, which is
enough to regenerate it with `replay`.
"""
import math
from dataclasses import dataclass

import torch

from .interpolants import get_interpolant
from .sde import diffusion_coefficient, em_step, particle_noise, time_grid

__all__ = ["Particles", "Run", "pid", "em_guided", "renoise", "perturb"]

_F = torch.float64


def pid(group, index):
    """Particle id of draw `index` of chain/slot `group` (unique, independent of batching and evaluation order)."""
    return (int(group) << 32) | int(index)


@dataclass
class Particles:
    """A population of evaluated particles, one per row."""

    x: torch.Tensor            # [B, *shape] latent x̄ at clock s
    s: torch.Tensor            # [B] float64 clock of each row
    level: torch.Tensor        # [B] long grid index of each row (−1 off the grid, e.g. SoP)
    x0: torch.Tensor           # [B, *shape] clean estimate x0̂
    eps: torch.Tensor          # [B, *shape] noise estimate ε̂
    r: torch.Tensor            # [B] float64 reward of x0̂ (−inf where not scored / non-finite)
    grad: object               # [B, *shape] ∇_x r(x0̂(x)) or None
    lineage: list              # per row: tuple of ops

    def __len__(self):
        return self.x.shape[0]

    def take(self, idx):
        """Rows `idx` (list or LongTensor; repeats allowed). Copies, never views."""
        if isinstance(idx, (list, tuple)) and len(idx) == 1:
            return self._row(int(idx[0]))
        idx = torch.as_tensor(idx, dtype=torch.long).reshape(-1)
        rows = idx.tolist()
        return Particles(self.x[idx], self.s[idx], self.level[idx], self.x0[idx], self.eps[idx], self.r[idx],
                         None if self.grad is None else self.grad[idx], [self.lineage[i] for i in rows])

    def _row(self, i):
        """One row as a 1-row population (slice + copy: the same values as indexing, a fraction of its cost)."""
        i = i + len(self) if i < 0 else i
        if not 0 <= i < len(self):
            raise IndexError(f"particle row {i} out of range for {len(self)} rows")
        sl = slice(i, i + 1)
        return Particles(self.x[sl].clone(), self.s[sl].clone(), self.level[sl].clone(), self.x0[sl].clone(),
                         self.eps[sl].clone(), self.r[sl].clone(), None if self.grad is None else self.grad[sl].clone(),
                         [self.lineage[i]])

    @staticmethod
    def cat(parts):
        parts = [p for p in parts if len(p)]
        grad = None if parts[0].grad is None else torch.cat([p.grad for p in parts])
        return Particles(*(torch.cat([getattr(p, n) for p in parts]) for n in ("x", "s", "level", "x0", "eps", "r")),
                         grad, [lin for p in parts for lin in p.lineage])


def _rows(v, x):
    """Per-row scalar tensor v [B] reshaped to broadcast against x [B, ...], in x's dtype."""
    return v.to(device=x.device, dtype=x.dtype).reshape(-1, *([1] * (x.dim() - 1)))


def em_guided(x, x0, eps, s, s_next, ip, g, z, scale=0.0, grad=None):
    """Euler–Maruyama step of the reverse SDE (Eq. 9/12) with DPS guidance, score += scale·∇r (App. E, Eq. 30).

    The guided score enters the drift through its (g²/2)·score term: x̄' = EM(x̄) + Δ·(g²/2)·scale·∇_x r."""
    out = em_step(x, x0, eps, s, s_next, ip, g, z)
    if scale and grad is not None and g > 0:
        out = out + ((float(s) - float(s_next)) * 0.5 * g * g * float(scale)) * grad
    return out


def renoise(x, s, f, ip, z):
    """Forward kernel, clock s → f > s: x̄_f = (α_f/α_s)·x̄_s + √(σ_f² − (α_f/α_s)²σ_s²)·z (SoP re-noising)."""
    a = float(ip.alpha(f)) / float(ip.alpha(s))
    var = float(ip.sigma(f)) ** 2 - a * a * float(ip.sigma(s)) ** 2
    return a * x + math.sqrt(max(var, 0.0)) * z


def perturb(x, lam, z):
    """Variance-preserving perturbation of an initial noise: (x + λz)/√(1 + λ²) (zero-order noise search)."""
    return (x + float(lam) * z) / math.sqrt(1.0 + float(lam) ** 2)


class Run:
    """One search run: settings, the NFE counter, the budget guard, callback, trace and warnings."""

    def __init__(self, denoise, reward, shape, *, method, nfe_budget, search_budget, steps, interpolant, sde, grid,
                 seed, max_batch, callback, diffusion="square", diffusion_norm=3.0, guidance_scale=0.0,
                 parametrisation="linear", device=None, dtype=torch.float32):
        self.denoise, self.reward, self.shape = denoise, reward, tuple(int(d) for d in shape)
        self.method, self.budget, self.search_budget = method, int(nfe_budget), int(search_budget)
        self.M, self.sde, self.seed = int(steps), bool(sde), int(seed)
        self.max_batch, self.callback = max_batch, callback
        self.ip = get_interpolant(interpolant)
        self.grid = [float(v) for v in time_grid(self.M, grid)]
        self.diffusion, self.diffusion_norm = diffusion, float(diffusion_norm)
        self.scale, self.parametrisation = float(guidance_scale), parametrisation
        # particles and the SDE update stay in float32 (or float64) even when the model runs in half precision
        self.device, self.dtype = device, dtype
        self.work = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
        self.nfe, self.trace, self.warnings, self.resolved = 0, [], [], {}
        self.best_r, self.best_x0 = -math.inf, None
        self._coef_cache, self._t_cache, self._g_cache = {}, {}, {}

    # ---- small helpers -------------------------------------------------------------------------
    def g(self, s):
        """Diffusion coefficient g(s) of the proposals (0 for the ODE), cached per clock."""
        g = self._g_cache.get(s)
        if g is None:
            g = self._g_cache.setdefault(s, diffusion_coefficient(self.diffusion if self.sde else "ode", s,
                                                                  self.diffusion_norm, self.ip))
        return g

    def noise(self, pids, step):
        return particle_noise(self.shape, self.seed, [int(p) for p in pids], int(step), self.device, self.work)

    def uniforms(self, n, stream, step):
        """n uniforms in (0, 1) from the reserved noise stream `stream` (< 0) at `step` (resampling draws)."""
        z = particle_noise((int(n),), self.seed, [int(stream)], int(step), "cpu", torch.float32)[0].to(_F)
        return 0.5 * (1.0 + torch.erf(z / math.sqrt(2.0)))

    def warn(self, msg):
        self.warnings.append(msg)
        self.trace.append({"event": "warning", "nfe": self.nfe, "message": msg})

    def record(self, **entry):
        """Append a per-step trace entry (linear time t of clock s, NFEs so far and the best reward seen are added)."""
        if isinstance(entry.get("s"), float):
            t = self._t_cache.get(entry["s"])
            if t is None:
                t = self._t_cache.setdefault(entry["s"], float(self.ip.to_linear(entry["s"])[0]))
            entry["t"] = t
        self.trace.append({**entry, "nfe": self.nfe, "best_reward": self.best_r})

    def require(self, needed, what, fix):
        if needed > self.search_budget:
            reserved = self.budget - self.search_budget
            extra = f" (+{reserved} reserved for finish_steps)" if reserved else ""
            raise ValueError(f"{self.method}: nfe_budget={self.budget}{extra} is smaller than {what} = {needed} NFE; "
                             f"{fix}")

    # ---- evaluation ----------------------------------------------------------------------------
    def evaluate(self, x, s, level, lineage, score=True):
        """Evaluate rows of x at clocks s (float64 [B]) in chunks of max_batch: 1 NFE per row; → Particles."""
        n = x.shape[0]
        s = torch.as_tensor(s, dtype=_F).reshape(-1).expand(n).clone()
        level = torch.as_tensor(level, dtype=torch.long).reshape(-1).expand(n).clone()
        guided = self.scale > 0
        score = score or guided
        if self.nfe + n > self.budget:
            raise RuntimeError(f"internal error: {self.method} tried to exceed nfe_budget={self.budget} "
                               f"(used {self.nfe}, asked {n})")
        mb = n if self.max_batch is None else int(self.max_batch)
        out = []
        for a in range(0, n, mb):
            sl = slice(a, min(a + mb, n))
            out.append(self._chunk(x[sl], s[sl], score, guided))
            self.nfe += out[-1][0].shape[0]
            self._after_chunk(out[-1], int(level[sl][0]), float(s[sl][0]))
        if len(out) == 1:  # one chunk (the usual case): no concatenation copies
            x0, eps, r, grad = out[0]
        else:
            x0, eps, r = (torch.cat([o[i] for o in out]) for i in range(3))
            grad = torch.cat([o[3] for o in out]) if guided else None
        return Particles(x, s, level, x0, eps, r, grad, list(lineage))

    def _coefs(self, s, x):
        """(α, σ, t, c) of the rows' clocks s (float64 [B]), as the schedule computes them, cached per run: the
        same few grid clocks come back at every draw. Returns α, σ, c shaped to broadcast against x and t [B]."""
        key = (tuple(s.tolist()), x.dim(), x.device, x.dtype)
        hit = self._coef_cache.get(key)
        if hit is None:
            a, sg = self.ip.alpha(s), self.ip.sigma(s)
            t, c = self.ip.to_linear(s)
            if self.parametrisation == "ve":
                t, c = sg / a, a
            hit = (_rows(a, x), _rows(sg, x), t.to(device=x.device, dtype=torch.float32), _rows(c, x))
            if len(self._coef_cache) < 4096:
                self._coef_cache[key] = hit
        return hit

    def _model(self, x, s):
        """x0̂ = denoise at the linear time t_s on input x̄/c_s (or the VE convention), per row; input in `dtype`."""
        _, _, t, c = self._coefs(s, x)
        x0 = self.denoise((x / c).to(self.dtype), t)
        return x0.to(x.dtype)

    def _chunk(self, x, s, score, guided):
        a, sg, _, _ = self._coefs(s, x)
        grad = None
        if guided:
            with torch.enable_grad():
                xg = x.detach().requires_grad_(True)
                x0 = self._model(xg, s)
                r = self._check_reward(self.reward(x0), x.shape[0], raw=True)
                if not r.requires_grad:
                    raise ValueError("guidance_scale > 0 needs a differentiable reward and denoise (the reward's "
                                     "output has no gradient); set guidance_scale=0 or pass differentiable callables")
                (grad,) = torch.autograd.grad(r.sum(), xg)
            x0, r = x0.detach(), self._check_reward(r.detach(), x.shape[0])
            if not torch.isfinite(grad).all():
                self.warn(f"non-finite reward gradient in {int((~torch.isfinite(grad)).sum())} entries: set to 0")
                grad = torch.nan_to_num(grad, nan=0.0, posinf=0.0, neginf=0.0)
        else:
            x0 = self._model(x, s)
            r = (self._check_reward(self.reward(x0), x.shape[0]) if score
                 else torch.full((x.shape[0],), -math.inf, dtype=_F))
        return x0, (x - a * x0) / sg, r, grad

    def _check_reward(self, r, n, raw=False):
        if not torch.is_tensor(r) or r.numel() != n:
            raise ValueError(f"reward(x0) must return a tensor with one value per row ([{n}]), got "
                             f"{tuple(r.shape) if torch.is_tensor(r) else type(r).__name__}")
        if raw:
            return r.reshape(n)
        r = r.detach().reshape(n).to(device="cpu", dtype=_F)
        if n <= 16 and all(map(math.isfinite, r.tolist())):  # small batches: a Python check is cheaper
            return r
        bad = ~torch.isfinite(r)
        if bad.any():
            self.warn(f"{int(bad.sum())} non-finite reward(s) in the batch after NFE {self.nfe}: treated as -inf")
            r = torch.where(bad, torch.full_like(r, -math.inf), r)
        return r

    def _after_chunk(self, chunk, level, s):
        x0, _, r, _ = chunk
        if len(r) and float(r.max()) > self.best_r:
            i = int(torch.argmax(r))
            self.best_r, self.best_x0 = float(r[i]), x0[i:i + 1].detach().clone()
        if self.callback is not None:
            self.callback({"nfe": self.nfe, "budget": self.budget, "step": level, "s": s, "method": self.method,
                           "best_reward": self.best_r, "x0": x0,
                           "best_x0": self.best_x0 if self.best_x0 is not None else x0[:1]})

    # ---- proposals ----------------------------------------------------------------------------
    def prior(self, pids, level=0, score=True, lineage=None):
        """Fresh N(0, I) latents at grid level `level` (keys (pid, level)), evaluated: one NFE each."""
        s = self.grid[level]
        lin = lineage or [()] * len(pids)
        ops = [base + (("noise", int(p), int(level), s),) for base, p in zip(lin, pids)]
        return self.evaluate(self.noise(pids, level), s, level, ops, score)

    def step(self, parents, pids, score=True):
        """One SDE (or ODE) proposal per parent row to the next grid level, keys (pid, level+1), then evaluated."""
        nxt = parents.level + 1
        levels = nxt.tolist()
        if len(set(levels)) == 1:  # every row to the same level (the usual case): no row gathers / scatters
            x, ops = self._step_rows(parents, None, pids, levels[0])
        else:
            x = torch.empty_like(parents.x)
            ops = [None] * len(parents)
            for lv in sorted(set(levels)):
                rows = (nxt == lv).nonzero().reshape(-1)
                x[rows], lin = self._step_rows(parents, rows, pids, lv)
                for i, op in zip(rows.tolist(), lin):
                    ops[i] = op
        s_rows = torch.tensor([self.grid[lv] for lv in levels], dtype=_F)
        return self.evaluate(x, s_rows, nxt, ops, score)

    def _step_rows(self, parents, rows, pids, lv):
        """SDE proposals of `rows` of parents (None = all) to grid level lv; → (x̄ [rows], lineages)."""
        s, s_next = self.grid[lv - 1], self.grid[lv]
        g = self.g(s)
        idx = range(len(parents)) if rows is None else rows.tolist()
        ps = [int(pids[i]) for i in idx]
        z = self.noise(ps, lv) if g > 0 else None
        pick = (lambda t: t) if rows is None else (lambda t: t[rows])
        grad = None if parents.grad is None else pick(parents.grad)
        x = em_guided(pick(parents.x), pick(parents.x0), pick(parents.eps), s, s_next, self.ip, g, z, self.scale, grad)
        tail = self.scale if g > 0 else 0.0
        ops = [parents.lineage[i] + (("sde", p, int(lv), s, s_next, g, tail),) for i, p in zip(idx, ps)]
        return x.to(parents.x.dtype), ops
