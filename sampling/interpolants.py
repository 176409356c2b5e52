"""Interpolants x̄_s = α(s)·x0 + σ(s)·ε on a clock s ∈ [0, 1] (s = 0 data, s = 1 noise), and their SNR map to
the linear (FLUX / rectified-flow) path x_t = (1 − t)·x0 + t·ε (method spec §1–3, paper Eq. 10–11, App. C).

Every interpolant with the same SNR curve describes one process: in the variance-exploding (k-diffusion)
parametrisation x_ve = x0 + σ_ve·ε with σ_ve = σ(s)/α(s). The linear model is always evaluated at
t = σ_ve / (1 + σ_ve) = σ/(α + σ) on the input x_t = x̄ / c with c = α + σ.

All schedule maths runs in float64, whatever dtype the model uses.
"""
import functools
import math

import torch

__all__ = ["Interpolant", "Linear", "VP", "Cosine", "Polynomial", "get_interpolant", "INTERPOLANTS"]

_F = torch.float64


def _t(s):
    return torch.as_tensor(s, dtype=_F)


class Interpolant:
    """α(s), σ(s), their derivatives, and the SNR time map to the linear path."""

    name = "interpolant"

    def alpha(self, s):
        raise NotImplementedError

    def sigma(self, s):
        raise NotImplementedError

    def d_alpha(self, s):
        raise NotImplementedError

    def d_sigma(self, s):
        raise NotImplementedError

    def s_from_sigma_ve(self, sigma_ve):
        """Inverse SNR map: the clock s at which σ(s)/α(s) = σ_ve."""
        raise NotImplementedError

    # ---- derived quantities -------------------------------------------------------------------
    @functools.lru_cache(maxsize=8192)
    def scalars(self, s):
        """(α, σ, α', σ', t_s, c_s) at one clock value as Python floats (cached: grids repeat every run)."""
        s = _t(float(s))
        a, g = float(self.alpha(s)), float(self.sigma(s))
        return a, g, float(self.d_alpha(s)), float(self.d_sigma(s)), g / (a + g), a + g

    def sigma_ve(self, s):
        """σ_ve = σ/α = 1/SNR (k-diffusion / VE noise level)."""
        s = _t(s)
        return self.sigma(s) / self.alpha(s)

    def snr(self, s):
        s = _t(s)
        return self.alpha(s) / self.sigma(s)

    def to_linear(self, s):
        """(t_s, c_s) with t_s = σ/(α+σ) (equal SNR on the linear path) and c_s = α+σ (paper Eq. 10)."""
        s = _t(s)
        a, g = self.alpha(s), self.sigma(s)
        return g / (a + g), a + g

    def s_from_linear(self, t):
        """The clock s whose SNR equals that of linear time t."""
        t = _t(t)
        return self.s_from_sigma_ve(t / (1 - t))

    def dt_ds(self, s):
        """ṫ_s = (α σ' − σ α') / (α + σ)² (method spec §3.3, linear source path)."""
        s = _t(s)
        a, g, da, dg = self.alpha(s), self.sigma(s), self.d_alpha(s), self.d_sigma(s)
        return (a * dg - g * da) / (a + g) ** 2

    def __repr__(self):
        return self.name

    def __eq__(self, other):
        return isinstance(other, Interpolant) and other.name == self.name

    def __hash__(self):
        return hash(self.name)


class Linear(Interpolant):
    """FLUX / rectified flow: α = 1 − s, σ = s (the clock is the model's own time)."""

    name = "linear"

    def alpha(self, s):
        return 1 - _t(s)

    def sigma(self, s):
        return _t(s)

    def d_alpha(self, s):
        return torch.full_like(_t(s), -1.0)

    def d_sigma(self, s):
        return torch.ones_like(_t(s))

    def s_from_sigma_ve(self, sigma_ve):
        v = _t(sigma_ve)
        return v / (1 + v)


class VP(Interpolant):
    """Variance preserving: B(s) = β_min s + ½(β_max − β_min)s², α = e^{−B/2}, σ = √(1 − e^{−B}) (spec §3.1)."""

    def __init__(self, beta_min=0.1, beta_max=20.0):
        self.beta_min, self.beta_max = float(beta_min), float(beta_max)
        self.name = "vp" if (beta_min, beta_max) == (0.1, 20.0) else f"vp:{beta_min}:{beta_max}"

    def B(self, s):
        s = _t(s)
        return self.beta_min * s + 0.5 * (self.beta_max - self.beta_min) * s ** 2

    def beta(self, s):
        return self.beta_min + (self.beta_max - self.beta_min) * _t(s)

    def alpha(self, s):
        return torch.exp(-0.5 * self.B(s))

    def sigma(self, s):
        return torch.sqrt(-torch.expm1(-self.B(s)))

    def d_alpha(self, s):
        return -0.5 * self.beta(s) * self.alpha(s)

    def d_sigma(self, s):
        return 0.5 * self.beta(s) * torch.exp(-self.B(s)) / self.sigma(s)

    def s_from_sigma_ve(self, sigma_ve):
        # σ_ve² = e^B − 1  ⇒  B = log1p(σ_ve²); solve the quadratic B(s) = B for s ≥ 0
        B = torch.log1p(_t(sigma_ve) ** 2)
        d = self.beta_max - self.beta_min
        return (-self.beta_min + torch.sqrt(self.beta_min ** 2 + 2 * d * B)) / d


class Cosine(Interpolant):
    """Trigonometric: α = cos(πs/2), σ = sin(πs/2)."""

    name = "cosine"

    def alpha(self, s):
        return torch.cos(0.5 * math.pi * _t(s))

    def sigma(self, s):
        return torch.sin(0.5 * math.pi * _t(s))

    def d_alpha(self, s):
        return -0.5 * math.pi * torch.sin(0.5 * math.pi * _t(s))

    def d_sigma(self, s):
        return 0.5 * math.pi * torch.cos(0.5 * math.pi * _t(s))

    def s_from_sigma_ve(self, sigma_ve):
        return (2 / math.pi) * torch.atan(_t(sigma_ve))


class Polynomial(Interpolant):
    """Polynomial convex path: α = (1 − s)^n, σ = 1 − (1 − s)^n; n = 1 is exactly the linear path."""

    def __init__(self, n=1.0):
        if n <= 0:
            raise ValueError(f"polynomial interpolant needs n > 0, got {n}")
        self.n = float(n)
        self.name = f"polynomial:{n:g}"

    def alpha(self, s):
        return (1 - _t(s)) ** self.n

    def sigma(self, s):
        return 1 - (1 - _t(s)) ** self.n

    def d_alpha(self, s):
        return -self.n * (1 - _t(s)) ** (self.n - 1)

    def d_sigma(self, s):
        return self.n * (1 - _t(s)) ** (self.n - 1)

    def s_from_sigma_ve(self, sigma_ve):
        v = _t(sigma_ve)
        return 1 - (1 / (1 + v)) ** (1 / self.n)


INTERPOLANTS = ("linear", "vp", "cosine", "polynomial:<n>")


def get_interpolant(spec):
    """Parse `"linear"`, `"vp"`, `"vp:<β_min>:<β_max>"`, `"cosine"` or `"polynomial:<n>"` (or pass an Interpolant)."""
    if isinstance(spec, Interpolant):
        return spec
    name, *args = str(spec).strip().lower().split(":")
    try:
        if name == "linear" and not args:
            return Linear()
        if name == "vp":
            return VP(*map(float, args)) if args else VP()
        if name in ("cosine", "trigonometric") and not args:
            return Cosine()
        if name == "polynomial":
            return Polynomial(float(args[0]) if args else 1.0)
    except (TypeError, ValueError) as e:
        raise ValueError(f"bad interpolant {spec!r}: {e}") from None
    raise ValueError(f"unknown interpolant {spec!r}; use one of {', '.join(INTERPOLANTS)}")
