"""The model_sampling object the Interpolant Converter patches into a flow (CONST) model.

It exposes the model in the variance-exploding view x_ve = x0 + σ·ε, σ = σ_ve (what ComfyUI's k-diffusion
samplers integrate), and maps back to the linear path before FLUX runs: x_t = x_ve/(1 + σ), t = σ/(1 + σ).
The time points of ComfyUI's own schedulers are those of the wrapped model (its shift included); the
interpolant tag tells the FlowSearch nodes which clock and noise schedule the SDE uses."""
import torch

from ..sampling.interpolants import get_interpolant

SIGMA_VE_CAP = 999.0  # t = 0.999 on the linear path, for interpolants whose σ/α is infinite at s = 1


def _rows(sigma, x):
    return sigma.reshape(sigma.shape[:1] + (1,) * (x.ndim - 1))


class InterpolantModelSampling(torch.nn.Module):
    """VE view of a linear-path flow model, tagged with the interpolant the FlowSearch SDE samples on."""

    def __init__(self, base, interpolant):
        super().__init__()
        self.base = base
        self.interpolant = get_interpolant(interpolant)
        self.sigma_cap = min(float(self.interpolant.sigma_ve(1.0)), SIGMA_VE_CAP)
        self.register_buffer("sigmas", self._ve(base.sigmas.float()))

    def _ve(self, t):
        t = torch.as_tensor(t, dtype=torch.float32)
        return (t / (1 - t).clamp_min(1e-12)).clamp(max=self.sigma_cap)

    @staticmethod
    def _lin(sigma):
        return sigma / (1 + sigma)

    @property
    def sigma_min(self):
        return self.sigmas[0]

    @property
    def sigma_max(self):
        return self.sigmas[-1]

    def timestep(self, sigma):
        return self.base.timestep(self._lin(sigma))

    def sigma(self, timestep):
        return self._ve(self.base.sigma(timestep))

    def percent_to_sigma(self, percent):
        return float(self._ve(self.base.percent_to_sigma(percent)))

    def sigma_from_clock(self, s):
        """σ_ve at interpolant clock s (capped where σ/α diverges at s = 1)."""
        return torch.as_tensor(self.interpolant.sigma_ve(s), dtype=torch.float32).clamp(max=self.sigma_cap)

    # ---- parametrisation --------------------------------------------------------------------------
    def calculate_input(self, sigma, noise):
        return self.base.calculate_input(self._lin(sigma), noise / (1 + _rows(sigma, noise)))

    def calculate_denoised(self, sigma, model_output, model_input):
        x_lin = model_input / (1 + _rows(sigma, model_input))
        return self.base.calculate_denoised(self._lin(sigma), model_output, x_lin)

    def noise_scaling(self, sigma, noise, latent_image, max_denoise=False):
        return latent_image + _rows(torch.as_tensor(sigma, dtype=noise.dtype, device=noise.device).reshape(-1), noise) * noise

    def inverse_noise_scaling(self, sigma, latent):
        return latent
