"""Analytic search benchmark: a Gaussian-mixture flow with a rare mode and a reward peaked next to it.

Shared by bench/search_curves.py and tests/test_search_*.py. Everything is exact (GaussianMixture.denoise), so
the only noise in a comparison is the methods' own randomness."""
import torch

from sampling.analytic import GaussianMixture

__all__ = ["RareModeProblem"]


class RareModeProblem:
    """Data: two common modes at ±scale·e1 (weight (1 − rare)/2 each) and a rare mode at 1.5·scale·e2, all with
    std τ. Reward r(x) = ½·exp(−d²/(2ω_b²)) + ½·exp(−d²/(2ω²)), d = ‖x − p‖, p = rare mean + offset·e3:
    a broad basin (finding the rare mode) plus a sharp peak next to it (placing the sample well). r ∈ (0, 1],
    smooth and differentiable, on VQAScore's scale."""

    def __init__(self, dim=4, scale=4.0, rare=0.01, std=0.5, width=0.5, offset=0.5, broad=3.0):
        self.dim = dim
        means = torch.zeros(3, dim, dtype=torch.float64)
        means[0, 0], means[1, 0], means[2, 1 % dim] = scale, -scale, 1.5 * scale
        self.gm = GaussianMixture(means, [std] * 3, [(1 - rare) / 2, (1 - rare) / 2, rare])
        self.target = means[2].clone()
        self.target[2 % dim] += offset
        self.width, self.broad = width, broad
        self.shape = (dim,)

    def denoise(self, x, t):
        return self.gm.denoise(x, t)

    def reward(self, x0):
        d2 = ((x0.to(torch.float64) - self.target.to(x0.device)) ** 2).reshape(x0.shape[0], -1).sum(1)
        return 0.5 * torch.exp(-0.5 * d2 / self.broad ** 2) + 0.5 * torch.exp(-0.5 * d2 / self.width ** 2)
