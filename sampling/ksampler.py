"""The SDE sampler in k-diffusion calling conventions (model(x, sigma) → denoised), for ComfyUI's KSAMPLER.

Two parametrisations arrive from ComfyUI:
- 'linear': an unconverted flow (CONST) model; x is x_t on the linear path and sigma is the linear time t.
- 've': a model converted by the Interpolant Converter; x = x0 + σ_ve·ε and sigma = σ_ve = σ(s)/α(s).
Either way the sampler works on x̄ = α(s)·x_ve on the interpolant's own clock s and uses sde.sample_on_grid.
"""
import torch

from .interpolants import Linear, get_interpolant
from .sde import particle_noise, sample_on_grid

__all__ = ["clock_from_sigmas", "sample_sde_k"]


def clock_from_sigmas(sigmas, interpolant, parametrisation):
    """Interpolant clock s for each ComfyUI sigma (σ = 0 maps to s = 0)."""
    ip = get_interpolant(interpolant)
    sig = torch.as_tensor(sigmas, dtype=torch.float64).cpu()
    if parametrisation == "linear":
        s = sig if isinstance(ip, Linear) else ip.s_from_linear(sig)
    elif parametrisation == "ve":
        s = ip.s_from_sigma_ve(sig)
    else:
        raise ValueError(f"unknown parametrisation {parametrisation!r}")
    return s.clamp(0.0, 1.0)  # float32 sigmas can round-trip a hair past the clock's ends


@torch.no_grad()
def sample_sde_k(model, x, sigmas, extra_args=None, callback=None, disable=None, *, interpolant="linear",
                 parametrisation="linear", sde=True, diffusion="square", diffusion_norm=3.0, seed=None):
    """Reverse SDE (Eq. 12) of a flow model on its interpolant, k-diffusion style; noise per image from (seed, i, step)."""
    extra_args = {} if extra_args is None else extra_args
    ip = get_interpolant(interpolant)
    if parametrisation == "linear" and not isinstance(ip, Linear):
        raise ValueError("a linear-parametrised model samples on the linear interpolant; convert it first")
    seed = int(extra_args.get("seed", 0) if seed is None else seed)
    s_grid = clock_from_sigmas(sigmas, ip, parametrisation)
    a0 = float(ip.alpha(s_grid[0])) if parametrisation == "ve" else 1.0
    s_in = x.new_ones([x.shape[0]])

    def denoise(xp, sig):
        return model(xp, sig.to(xp.dtype) * s_in, **extra_args)

    def noise(i, xb):
        return particle_noise(xb.shape[1:], seed, range(xb.shape[0]), i, xb.device, xb.dtype)

    def to_param(xb, s):
        return xb / float(ip.alpha(s)) if parametrisation == "ve" else xb

    def cb(d):
        if callback is not None:
            i = d["i"]
            callback({"x": to_param(d["x"], d["s"]), "i": i, "sigma": sigmas[i], "sigma_hat": sigmas[i],
                      "denoised": d["denoised"]})

    out = sample_on_grid(denoise, x * a0, s_grid, interpolant=ip, parametrisation=parametrisation, sde=sde,
                         diffusion=diffusion, diffusion_norm=diffusion_norm, noise=noise, callback=cb)
    return out if float(s_grid[-1]) <= 0.0 else to_param(out, s_grid[-1])
