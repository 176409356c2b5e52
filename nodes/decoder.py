"""Decoding clean-estimate latents to IMAGEs: for the reward during a search, and for the node's outputs."""
import torch
import torch.nn.functional as F

import comfy.model_management as mm


class LatentDecoder:
    """Decodes clean-estimate latents (model space) to IMAGEs for the reward, in batches ComfyUI sizes.

    reward_resolution > 0: the latent is area-downsampled first so the decoded image's longer side is at most
    that many pixels (≈ (resolution/size)² of the decode cost); 0 decodes at full size. On a CPU VAE the latent
    is passed channels-last (oneDNN convolutions, ~25 % faster decodes; identical up to float rounding) and large
    images are decoded a few at a time (see CPU_DECODE_POSITIONS)."""

    def __init__(self, vae, model_patcher, differentiable=False, memory=None, reward_resolution=0):
        self.vae, self.latent_format = vae, model_patcher.model.latent_format
        self.differentiable, self.memory = differentiable, memory
        self.reward_resolution = int(reward_resolution or 0)
        self.channels_last = torch.device(getattr(vae, "device", "cpu")).type == "cpu"
        self.decodes = 0

    def reward_size(self, h, w):
        """Latent (h, w) the reward's images are decoded from (reward_resolution caps the longer image side)."""
        up = getattr(self.vae, "downscale_ratio", 8)
        up = up if isinstance(up, int) else 8
        if self.reward_resolution <= 0 or max(h, w) * up <= self.reward_resolution:
            return h, w
        f = self.reward_resolution / (max(h, w) * up)
        return max(1, round(h * f)), max(1, round(w * f))

    def _shrink(self, z):
        size = self.reward_size(*z.shape[-2:])
        return z if tuple(size) == tuple(z.shape[-2:]) else F.interpolate(z, size=size, mode="area")

    def check(self, latent_channels):
        want = getattr(self.vae, "latent_channels", None)
        if want is not None and want != latent_channels:
            raise ValueError(f"The VAE expects {want}-channel latents but the model makes {latent_channels}-channel "
                             "latents: use the VAE that belongs to the diffusion model (FLUX: ae.safetensors).")

    def __call__(self, x0):
        self.decodes += x0.shape[0]
        z = self._shrink(self.latent_format.process_out(x0))
        if self.memory is not None and self.memory.can_evict:
            self.memory.ensure(self.vae.memory_used_decode(z.shape, self.vae.vae_dtype))
        if self.differentiable and torch.is_grad_enabled() and z.requires_grad:
            # ComfyUI's VAE.decode detaches; decode through the torch module so gradients reach the latent
            mm.load_models_gpu([self.vae.patcher])
            out = self.vae.first_stage_model.decode(z.to(self.vae.vae_dtype).to(self.vae.device))
            return self.vae.process_output(out.float()).movedim(1, -1)
        if self.channels_last and z.ndim == 4:
            z = z.contiguous(memory_format=torch.channels_last)
            # on a CPU, decoding a batch of large images is slower per image than one at a time (the activations
            # leave the cache: 256 px, 0.37 s/image at batch 1 vs 0.41-0.44 s at batch 2-4); small ones batch well
            rows = max(1, self.CPU_DECODE_POSITIONS // (z.shape[-2] * z.shape[-1]))
            if z.shape[0] > rows:
                return torch.cat([self._decode(z[i:i + rows]) for i in range(0, z.shape[0], rows)])
        return self._decode(z)

    CPU_DECODE_POSITIONS = 1024  # latent positions per CPU decode call (32×32 = one 256 px image)

    def _decode(self, z):
        img = self.vae.decode(z)
        return img.reshape(-1, *img.shape[-3:]) if img.ndim > 4 else img


@torch.no_grad()
def decode_images(vae, model_patcher, latents):
    """Full-size IMAGEs of model-space latents (the node's outputs), through the same decoder the search uses."""
    return LatentDecoder(vae, model_patcher)(latents)
