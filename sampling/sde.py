"""Marginal-preserving reverse SDE for flow models on any interpolant (method spec §2–3, paper Eq. 7–12, Alg. 1).

One model call at (x̄, s) gives the clean estimate x0̂ and the noise estimate ε̂ = (x̄ − α x0̂)/σ; from them
the interpolant's velocity ū = α'·x0̂ + σ'·ε̂ and score ∇log p_s = −ε̂/σ. A reverse Euler–Maruyama step from
s to s − Δ is  x̄ ← x̄ − Δ·ū + Δ·(g²/2)·score + g·√Δ·z  with g = g(s) evaluated at the start of the step.
"""
import hashlib
import math

import torch

from .interpolants import get_interpolant

__all__ = ["DIFFUSIONS", "GRIDS", "diffusion_coefficient", "time_grid", "particle_noise", "clean_estimate",
           "em_step", "sample_on_grid", "sample"]

DIFFUSIONS = ("square", "constant", "linear", "sigma", "sin", "exp", "tan", "clipping", "ode")
GRIDS = ("paper", "uniform")


def diffusion_coefficient(name, s, norm=3.0, interpolant=None):
    """g(s) = norm · shape(s) for the coefficient families of spec §2.3; 'ode' is g = 0."""
    s = float(s)
    if name == "square":
        v = s * s
    elif name == "constant":
        v = 1.0
    elif name == "linear":
        v = s
    elif name == "sigma":
        if interpolant is None:
            raise ValueError("diffusion 'sigma' needs the interpolant")
        v = float(get_interpolant(interpolant).sigma(s))
    elif name == "sin":
        v = math.sin(0.5 * math.pi * s)
    elif name == "exp":
        v = math.exp(-(((s - 1.0) / 0.1) ** 2))
    elif name == "tan":
        v = math.tan(0.5 * math.pi * min(s, 0.95))
    elif name == "clipping":
        v = max(0.0, 2.0 * (s - 0.5))
    elif name == "ode":
        return 0.0
    else:
        raise ValueError(f"unknown diffusion {name!r}; use one of {', '.join(DIFFUSIONS)}")
    return float(norm) * v


def time_grid(steps, grid="paper", s_max=1.0):
    """Clock grid s_0 = s_max > … > s_M = 0. 'paper': s_i = √(1 − (i/M)²) (App. C, adaptive time); 'uniform';
    or a sequence of M + 1 explicit clock values."""
    if int(steps) < 1:
        raise ValueError(f"steps must be ≥ 1, got {steps}")
    if not isinstance(grid, str):  # explicit clock values, e.g. from a ComfyUI SIGMAS input
        s = torch.as_tensor([float(v) for v in grid], dtype=torch.float64)
        if len(s) != int(steps) + 1 or float(s[-1]) != 0.0 or float(s[0]) > 1.0 or bool((s[1:] >= s[:-1]).any()):
            raise ValueError(f"an explicit grid needs steps+1 = {int(steps) + 1} decreasing clock values from ≤ 1 "
                             f"down to 0, got {s.tolist()}")
        return s
    u = torch.arange(int(steps) + 1, dtype=torch.float64) / int(steps)
    if grid == "paper":
        s = torch.sqrt(torch.clamp(1 - u ** 2, min=0.0))
    elif grid == "uniform":
        s = 1 - u
    else:
        raise ValueError(f"unknown grid {grid!r}; use one of {', '.join(GRIDS)}")
    s = s * float(s_max)
    s[-1] = 0.0
    return s


def _mix(*ints):
    h = hashlib.blake2b(b"flowsearch:" + ",".join(str(int(i)) for i in ints).encode(), digest_size=8)
    return int.from_bytes(h.digest(), "little") & ((1 << 63) - 1)


def particle_noise(shape, seed, particle_ids, step, device=None, dtype=torch.float32):
    """Standard normal noise for each particle, derived only from (seed, particle id, step).

    Each row comes from its own CPU generator, so a particle's noise does not depend on batch size, batch
    order or device: results are bit-identical for any particle minibatching."""
    out = torch.empty((len(particle_ids), *shape), dtype=torch.float32)
    g = torch.Generator()
    for row, pid in enumerate(particle_ids):
        g.manual_seed(_mix(seed, pid, step))
        out[row] = torch.randn(shape, generator=g)
    return out.to(device=device, dtype=dtype)


def clean_estimate(denoise, x, s, interpolant, parametrisation="linear"):
    """One model call at clock s → (x0̂, ε̂) on the interpolant.

    parametrisation 'linear': denoise(x_t, t) with x_t = x̄/c, t = t_s (FLUX convention, spec §3.3);
    've': denoise(x_ve, σ_ve) with x_ve = x̄/α, σ_ve = σ/α (k-diffusion convention)."""
    a, g, _, _, t, c = get_interpolant(interpolant).scalars(float(s))
    b = x.shape[0]
    if parametrisation == "linear":
        x0 = denoise(x / c, torch.full((b,), t, dtype=torch.float32, device=x.device))
    elif parametrisation == "ve":
        x0 = denoise(x / a, torch.full((b,), g / a, dtype=torch.float32, device=x.device))
    else:
        raise ValueError(f"unknown parametrisation {parametrisation!r}")
    x0 = x0.to(x.dtype)
    return x0, torch.sub(x, x0, alpha=a).div_(g)


def em_step(x, x0, eps, s, s_next, interpolant, g, z=None):
    """x̄ − Δ·ū + Δ·(g²/2)·score + g·√Δ·z with ū = α'x0̂ + σ'ε̂, score = −ε̂/σ, Δ = s − s_next (Eq. 9/12)."""
    _, sg, da, dg, _, _ = get_interpolant(interpolant).scalars(float(s))
    dt = float(s) - float(s_next)
    # drift written on x0̂/ε̂: −Δ(α'x0̂ + σ'ε̂) − Δ(g²/2)ε̂/σ
    out = torch.sub(x, x0, alpha=dt * da).sub_(eps, alpha=dt * (dg + 0.5 * g * g / sg))
    if g > 0:
        if z is None:
            raise ValueError("an SDE step (g > 0) needs noise z")
        out.add_(z, alpha=g * math.sqrt(dt))
    return out


def sample_on_grid(denoise, x, s_grid, *, interpolant="vp", parametrisation="linear", sde=True,
                   diffusion="square", diffusion_norm=3.0, noise=None, callback=None):
    """Integrate the reverse SDE (or ODE) along s_grid from x̄ at s_grid[0]; a final s = 0 jumps to x0̂.

    noise(step, x) → z supplies the Brownian increments (standard normal, like x)."""
    ip = get_interpolant(interpolant)
    grid = [float(v) for v in s_grid]
    name = diffusion if sde else "ode"
    for i, (s, s_next) in enumerate(zip(grid[:-1], grid[1:])):
        x0, eps = clean_estimate(denoise, x, s, ip, parametrisation)
        if callback is not None:
            callback({"i": i, "s": s, "x": x, "denoised": x0})
        if s_next <= 0.0:
            return x0
        g = diffusion_coefficient(name, s, diffusion_norm, ip)
        x = em_step(x, x0, eps, s, s_next, ip, g, noise(i, x) if g > 0 else None)
    return x


def sample(denoise, noise, *, interpolant="vp", sde=True, steps=10, grid="paper", diffusion="square",
           diffusion_norm=3.0, generator=None, callback=None, seed=None):
    """Sample a batch from a linear-path flow model on the chosen interpolant (paper Alg. 1).

    denoise(x, t) → x0̂ evaluates the model on the linear path (t: float tensor [B]); `noise` is the initial
    N(0, I) batch; returns the sample at data (the last step jumps to the denoised estimate). SDE noise comes
    from `generator` if given, else per-particle streams derived from (seed, particle, step)."""
    ip = get_interpolant(interpolant)
    s_grid = time_grid(steps, grid)

    def step_noise(i, x):
        if generator is not None:
            z = torch.randn(x.shape, generator=generator, device=generator.device, dtype=torch.float32)
            return z.to(device=x.device, dtype=x.dtype)
        return particle_noise(x.shape[1:], 0 if seed is None else seed, range(x.shape[0]), i, x.device, x.dtype)

    # start from pure N(0, I) at s = 1 even where α(1) > 0 (VP: ᾱ(1) ≈ 0.0066; spec §3.5)
    return sample_on_grid(denoise, noise, s_grid, interpolant=ip, sde=sde, diffusion=diffusion,
                          diffusion_norm=diffusion_norm, noise=step_noise, callback=callback)
