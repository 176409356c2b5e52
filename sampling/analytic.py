"""Analytic Gaussian-mixture flow: data x0 ~ Σ_k w_k N(μ_k, τ_k² I) on the linear path x_t = (1 − t)x0 + tε.

Its denoiser E[x0 | x_t] is exact, so samplers, interpolant conversion and search can be checked against
closed-form marginals. Used by the tests and the search benchmarks; also handy for users' own experiments."""
import math

import torch

__all__ = ["GaussianMixture"]


class GaussianMixture:
    def __init__(self, means, stds, weights):
        self.means = torch.as_tensor(means, dtype=torch.float64)          # [K, D]
        self.stds = torch.as_tensor(stds, dtype=torch.float64).reshape(-1)  # [K]
        w = torch.as_tensor(weights, dtype=torch.float64).reshape(-1)
        self.weights = w / w.sum()
        self.dim = self.means.shape[1]

    def _components(self, t):
        """Per-component mean and variance of x_t (shapes [B,K,D] and [B,K])."""
        a = (1 - t)[:, None]                                               # [B,1]
        var = (a * self.stds[None]) ** 2 + t[:, None] ** 2                 # [B,K]
        return a[..., None] * self.means[None], var, a

    def responsibilities(self, x, t):
        """Posterior component weights p(k | x_t)."""
        x, t = x.to(torch.float64).reshape(x.shape[0], -1), t.to(torch.float64).reshape(-1)
        m, var, _ = self._components(t)
        d2 = ((x[:, None] - m) ** 2).sum(-1)
        logp = torch.log(self.weights)[None] - 0.5 * d2 / var - 0.5 * self.dim * torch.log(2 * math.pi * var)
        return torch.softmax(logp, dim=1)

    def denoise(self, x, t):
        """Exact E[x0 | x_t = x] (float64 inside, returned in x's dtype and shape)."""
        shape, dtype = x.shape, x.dtype
        xf, tf = x.to(torch.float64).reshape(x.shape[0], -1), t.to(torch.float64).reshape(-1)
        m, var, a = self._components(tf)
        r = self.responsibilities(xf, tf)
        gain = (a * self.stds[None] ** 2) / var                            # Cov(x0, x_t)/Var(x_t) per comp.
        post = self.means[None] + gain[..., None] * (xf[:, None] - m)     # [B,K,D]
        return (r[..., None] * post).sum(1).to(dtype).reshape(shape)

    def sample_data(self, n, generator=None):
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        return self.means[k] + self.stds[k, None] * z, k

    def log_prob(self, x):
        x = x.to(torch.float64).reshape(x.shape[0], -1)
        d2 = ((x[:, None] - self.means[None]) ** 2).sum(-1)
        var = self.stds[None] ** 2
        lp = torch.log(self.weights)[None] - 0.5 * d2 / var - 0.5 * self.dim * torch.log(2 * math.pi * var)
        return torch.logsumexp(lp, dim=1)

    def assign(self, x):
        """Most likely component of each data point."""
        x = x.to(torch.float64).reshape(x.shape[0], -1)
        d2 = ((x[:, None] - self.means[None]) ** 2).sum(-1)
        var = self.stds[None] ** 2
        lp = torch.log(self.weights)[None] - 0.5 * d2 / var - 0.5 * self.dim * torch.log(var)
        return lp.argmax(1)
