"""Reward-guided inference-time search for flow models under an exact NFE budget (Kim et al. 2025, arXiv 2503.19385).

    import sampling
    res = sampling.search(denoise, reward, (16, 64, 64), method="rbf", nfe_budget=500)
    res.sample, res.reward, res.nfe, res.summary()

`denoise(x, t) -> x0̂` evaluates the flow model on the linear path (t: float tensor [B], as in `sampling.sample`);
`reward(x0̂) -> Tensor[B]` scores a batch of clean estimates. One NFE = one denoise row. Methods live in
`search_methods.py` / `search_rbf.py` / `search_psp.py`; this module validates the call, runs the method and
packages the result.
"""
import inspect
import math
from dataclasses import dataclass, field

import torch

from .interpolants import get_interpolant
from .option_specs import check_options
from .sde import GRIDS, em_step
from .search_core import Run, em_guided, perturb, renoise
from .search_methods import bon, code, dps, noise_search, smc, sop, svdd
from .search_psp import psp
from .search_rbf import rbf
from .search_rbf_variants import rbf_adaptive, rbf_threshold

__all__ = ["search", "SearchResult", "replay", "method_options", "METHODS", "COMMON_OPTIONS"]

METHODS = {"bon": bon, "noise_search": noise_search, "sop": sop, "smc": smc, "svdd": svdd, "code": code,
           "rbf": rbf, "dps": dps, "psp": psp,
           "rbf_threshold": rbf_threshold, "rbf_adaptive": rbf_adaptive}
# options accepted by every method (defaults)
COMMON_OPTIONS = {"finish_steps": 0, "guidance_scale": 0.0, "diffusion": "square", "diffusion_norm": 3.0,
                  "parametrisation": "linear", "device": None, "dtype": torch.float32}


def method_options(method):
    """{option: default} of a method (its own options, without the common ones)."""
    params = list(inspect.signature(METHODS[method]).parameters.values())[1:]
    return {p.name: p.default for p in params}


def _jsonable(v):
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, (bool, int, str)) or v is None:
        return v
    if torch.is_tensor(v):
        return _jsonable(v.tolist())
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return str(v)


@dataclass
class SearchResult:
    """Outcome of `search`. Tensors: sample [1, *shape], candidates [n, *shape], candidate_rewards [n]."""

    method: str
    sample: torch.Tensor           # chosen clean estimate (finished to s = 0 if finish_steps > 0)
    reward: float                  # reward of `sample`
    nfe: int                       # model evaluations actually used (≤ budget)
    budget: int
    candidates: torch.Tensor       # x0̂ of the final particles the method held
    candidate_rewards: torch.Tensor
    chosen: int                    # index of the returned candidate
    seeds: list                    # per candidate: {"seed", "interpolant", "lineage"}; replay(...) regenerates it
    trace: list                    # per step dicts (nfe so far, best reward, method-specific counts)
    options: dict                  # every resolved setting
    latent: torch.Tensor = None    # x̄ of the chosen particle at its last evaluated clock
    latent_s: float = None
    search_reward: float = None    # reward of the chosen candidate before finishing
    warnings: list = field(default_factory=list)

    def summary(self):
        """Compact JSON-safe dict (for a UI): method, nfe, rewards, options, warnings."""
        return _jsonable({"method": self.method, "reward": self.reward, "search_reward": self.search_reward,
                          "nfe": self.nfe, "budget": self.budget, "chosen": self.chosen,
                          "candidate_rewards": self.candidate_rewards, "options": self.options,
                          "warnings": self.warnings})

    def to_json(self):
        """Full JSON-safe dict: the summary plus seeds/lineages and the per-step trace (−inf/NaN → None)."""
        return {**self.summary(), "seeds": _jsonable(self.seeds), "trace": _jsonable(self.trace)}


def _check_call(denoise, reward, shape, method, nfe_budget, steps, max_batch, grid, common):
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    if not callable(denoise) or not callable(reward):
        raise ValueError("denoise(x, t) and reward(x0) must be callables")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer ≥ 1 (the paper uses 10), got {steps!r}")
    if not isinstance(nfe_budget, int) or nfe_budget < 1:
        raise ValueError(f"nfe_budget must be a positive integer number of model evaluations, got {nfe_budget!r}")
    if max_batch is not None and (not isinstance(max_batch, int) or max_batch < 1):
        raise ValueError(f"max_batch must be None (all rows at once) or a positive integer, got {max_batch!r}")
    if isinstance(grid, str):
        if grid not in GRIDS:
            raise ValueError(f"unknown grid {grid!r}; use one of {', '.join(GRIDS)} or a list of clock values")
    else:
        g = [float(v) for v in grid]
        if len(g) != steps + 1 or g[-1] != 0.0 or any(a <= b for a, b in zip(g[:-1], g[1:])) or g[0] > 1.0:
            raise ValueError(f"a custom grid must be steps+1={steps + 1} decreasing clock values from ≤ 1 to 0, got {g}")
    if not all(isinstance(d, int) and d > 0 for d in shape):
        raise ValueError(f"shape must be the shape of one sample (positive ints), got {shape!r}")
    f = common["finish_steps"]   # the option ranges were checked by option_specs.check_options
    if nfe_budget - f < steps:
        raise ValueError(f"nfe_budget={nfe_budget} is smaller than one pass: steps={steps} NFE"
                         f"{f' + finish_steps={f}' if f else ''}; raise nfe_budget or lower steps")


def _split(method, options, sde):
    own = method_options(method)
    unknown = sorted(set(options) - set(own) - set(COMMON_OPTIONS))
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)} for method {method!r}; its options are "
                         f"{', '.join(own) or '(none)'}, and every method takes {', '.join(COMMON_OPTIONS)}")
    common = {k: options.get(k, v) for k, v in COMMON_OPTIONS.items()}
    own = {k: v for k, v in options.items() if k in own}
    check_options(method, own, common, {"sde": sde})
    return own, common


def _finish(run, p, steps):
    """Deterministic ODE from the chosen particle's clock to 0 on a grid uniform in linear time: `steps` NFE."""
    s0 = float(p.s[0])
    t0 = float(run.ip.to_linear(s0)[0])
    clocks = [s0] + [float(run.ip.s_from_linear(t0 * (1 - j / (steps + 1)))) for j in range(1, steps + 1)]
    scale, run.scale = run.scale, 0.0
    for j, (s, s_next) in enumerate(zip(clocks[:-1], clocks[1:]), 1):
        x = em_step(p.x, p.x0, p.eps, s, s_next, run.ip, 0.0)
        p = run.evaluate(x, s_next, p.level, [p.lineage[0] + (("ode", s, s_next),)], score=j == steps)
    run.scale = scale
    run.record(step="finish", s=clocks[-1], finish_steps=steps, reward=float(p.r[0]))
    return p


def _check_rewards(reward, r):
    """No finite reward among the final candidates: nothing to choose from, so fail instead of returning one."""
    if not bool(torch.isfinite(r).any()):
        name = getattr(reward, "name", None) or getattr(reward, "__name__", "reward")
        raise ValueError(f"the reward '{name}' gave no finite score: all {r.numel()} final candidates scored NaN or "
                         "±inf, so the search cannot choose an image. Fix the reward's inputs (a NaN weight or "
                         "target, an empty prompt, a broken model file) or use another reward.")


def search(denoise, reward, shape, *, method, nfe_budget, steps=10, interpolant="vp", sde=True, grid="paper",
           seed=0, max_batch=None, callback=None, **method_options_):
    """Run a reward-guided particle search within `nfe_budget` model evaluations; → SearchResult.

    Common options: finish_steps (extra NFEs, reserved from the budget, to take the chosen particle to s = 0 with
    a deterministic ODE), guidance_scale (DPS-style gradient guidance, needs differentiable denoise/reward),
    diffusion/diffusion_norm (g(s) = 3s² by default), parametrisation ('linear' or 've'), device, dtype.
    `callback(event)` runs after every evaluated batch; an exception raised there propagates at once."""
    shape = tuple(shape)
    own, common = _split(method, method_options_, sde) if method in METHODS else ({}, dict(COMMON_OPTIONS))
    _check_call(denoise, reward, shape, method, nfe_budget, steps, max_batch, grid, common)
    if common["guidance_scale"] > 0 and not sde:
        raise ValueError("guidance_scale acts through the SDE's (g²/2)·score term; set sde=True or guidance_scale=0")
    run = Run(denoise, reward, shape, method=method, nfe_budget=nfe_budget,
              search_budget=nfe_budget - common["finish_steps"], steps=steps, interpolant=interpolant, sde=sde,
              grid=grid, seed=seed, max_batch=max_batch, callback=callback,
              **{k: v for k, v in common.items() if k != "finish_steps"})
    if run.parametrisation == "ve" and not float(run.ip.alpha(run.grid[0])) > 0:
        raise ValueError(f"parametrisation='ve' needs α(s_0) > 0, but the {run.ip} interpolant has α = 0 at "
                         f"s_0 = {run.grid[0]}; use parametrisation='linear' or a grid starting below 1")
    with torch.no_grad():
        cands = METHODS[method](run, **own)
        _check_rewards(reward, cands.r)
        chosen = int(torch.argmax(cands.r))
        best = cands.take([chosen])
        final = _finish(run, best, common["finish_steps"]) if common["finish_steps"] else best
    options = {"method": method, "nfe_budget": nfe_budget, "steps": steps, "interpolant": str(run.ip), "sde": sde,
               "grid": grid, "seed": seed, "max_batch": max_batch, **{k: v for k, v in common.items()},
               **own, **run.resolved}
    seeds = [{"seed": seed, "interpolant": str(run.ip), "lineage": [list(op) for op in lin]}
             for lin in cands.lineage]
    dt = common["dtype"]
    return SearchResult(method=method, sample=final.x0.to(dt), reward=float(final.r[0]), nfe=run.nfe,
                        budget=nfe_budget, candidates=cands.x0.to(dt), candidate_rewards=cands.r, chosen=chosen,
                        seeds=seeds, trace=run.trace, options=options, latent=best.x.to(dt), latent_s=float(best.s[0]),
                        search_reward=float(best.r[0]), warnings=run.warnings)


def replay(denoise, shape, lineage, *, seed=0, interpolant="vp", reward=None, parametrisation="linear",
           device=None, dtype=torch.float32):
    """Regenerate one candidate from its lineage (`result.seeds[i]`, or a bare lineage list with seed/interpolant
    given here): → x0̂ [1, *shape]. Costs one NFE per operation; guided steps need the same differentiable
    `reward`; pass the search's parametrisation and dtype."""
    if isinstance(lineage, dict):
        seed, interpolant = lineage.get("seed", seed), lineage.get("interpolant", interpolant)
        lineage = lineage["lineage"]
    ip = get_interpolant(interpolant)
    run = Run(denoise, reward if reward is not None else (lambda x0: x0.new_zeros(x0.shape[0])), tuple(shape),
              method="replay", nfe_budget=2 ** 62, search_budget=2 ** 62, steps=1, interpolant=ip, sde=True,
              grid="paper", seed=seed, max_batch=None, callback=None, parametrisation=parametrisation,
              device=device, dtype=dtype)
    x = s = None
    for op in lineage:
        kind, args = op[0], op[1:]
        if kind == "noise":
            x, s = run.noise([args[0]], args[1]), float(args[2])
        elif kind == "perturb":
            x = perturb(x, args[2], run.noise([args[0]], args[1]))
        elif kind == "renoise":
            x, s = renoise(x, args[2], args[3], ip, run.noise([args[0]], args[1])), float(args[3])
        elif kind in ("sde", "ode"):
            scale = float(args[5]) if kind == "sde" else 0.0
            run.scale = scale
            e = run.evaluate(x, s, 0, [()], score=scale > 0)
            if kind == "ode":
                x, s = em_step(x, e.x0, e.eps, args[0], args[1], ip, 0.0), float(args[1])
            else:
                p, step, s_, s_next, g = args[:5]
                z = run.noise([p], step) if g > 0 else None
                x, s = em_guided(x, e.x0, e.eps, s_, s_next, ip, g, z, scale, e.grad), float(s_next)
        else:
            raise ValueError(f"replay: unknown lineage op {kind!r}")
    run.scale = 0.0
    return run.evaluate(x, s, 0, [()], score=False).x0.to(dtype)
