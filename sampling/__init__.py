"""FlowSearch sampling core: pure torch (no ComfyUI import), usable as a Python API.

    import sampling
    x = sampling.sample(denoise, noise, interpolant="vp", sde=True, steps=10)
    res = sampling.search(denoise, reward, shape, method="rbf", nfe_budget=500)
"""
from .analytic import GaussianMixture
from .interpolants import INTERPOLANTS, VP, Cosine, Interpolant, Linear, Polynomial, get_interpolant
from .ksampler import sample_sde_k
from .sde import (DIFFUSIONS, GRIDS, clean_estimate, diffusion_coefficient, em_step, particle_noise, sample,
                  sample_on_grid, time_grid)
from .search import COMMON_OPTIONS, METHODS, SearchResult, method_options, replay, search
from .search_methods import funnel_counts, smc_temperatures
from .search_psp import psp_counts, psp_levels
from .search_rbf import rbf_quotas

__version__ = "0.1.0"
__all__ = ["GaussianMixture", "INTERPOLANTS", "VP", "Cosine", "Interpolant", "Linear", "Polynomial", "get_interpolant",
           "sample_sde_k", "DIFFUSIONS", "GRIDS", "clean_estimate", "diffusion_coefficient", "em_step",
           "particle_noise", "sample", "sample_on_grid", "time_grid", "COMMON_OPTIONS", "METHODS", "SearchResult",
           "method_options", "replay", "search", "rbf_quotas", "funnel_counts", "smc_temperatures", "psp_counts",
           "psp_levels"]
