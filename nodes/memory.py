"""Memory policy of a search: the diffusion model, VAE and reward stay loaded together; batch size from free memory."""
import torch

import comfy.model_management as mm


class CoResident:
    """Memory policy: the diffusion model, the VAE and the reward models are loaded as one group, and every load
    during the search names the whole group. ComfyUI's free_memory() never evicts a model named in the same
    load call, so scoring a candidate cannot push FLUX out and make every later step stream its weights
    (anchors §3.4). Before each decode + score, `ensure(memory)` frees that much for the VAE's own load call
    by evicting models outside the group only. If the group does not fit, ComfyUI loads what fits (lowvram)."""

    def __init__(self, model_patcher, vae, reward):
        from ..rewards import comfy_glue
        self.leaves = [leaf for leaf in reward.leaves() if getattr(leaf, "patcher", None) is not None]
        self.group = [model_patcher, vae.patcher, *comfy_glue.patchers(reward)]
        self.hooks = [leaf.before_use for leaf in self.leaves]
        # ComfyUI never frees memory on a CPU load device (load_models_gpu skips free_memory there), so once the
        # group is loaded a per-decode ensure() could evict nothing: skip it (0.2-0.4 ms per decode on CPU)
        self.can_evict = any(torch.device(getattr(p, "load_device", "cpu")).type != "cpu" for p in self.group)

    def load(self, memory_required=0):
        mm.load_models_gpu(self.group, memory_required=memory_required)

    def ensure(self, memory_required=0):
        if self.can_evict:
            self.load(memory_required)

    def __enter__(self):
        self.load()
        for leaf in self.leaves:
            leaf.before_use = self.ensure
        return self

    def __exit__(self, *exc):
        for leaf, hook in zip(self.leaves, self.hooks):
            leaf.before_use = hook


def batch_size_from_memory(model_patcher, vae, latent_shape, requested, cap=16):
    """Candidates per model call: `requested` if set, else what the free memory allows for the model's
    activations plus decoding them (≤ cap). Results never depend on it (per-particle noise streams)."""
    if requested:
        return int(requested)
    per = model_patcher.model.memory_required([1, *latent_shape]) + vae.memory_used_decode([1, *latent_shape],
                                                                                           vae.vae_dtype)
    free = mm.get_free_memory(model_patcher.load_device)
    return int(max(1, min(cap, free // max(per, 1))))
