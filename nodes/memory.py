"""Memory policy of a search: what must fit, the batch size, and keeping the diffusion model, VAE and reward loaded.

The fit rule, checked once before every search (`plan`), with ComfyUI's own figures:

    W = model_patcher.model_size() + VAE model_size() + Σ model_size() of the reward's patchers
    A = model.memory_required([1, *latent])              activations of one candidate in one model call
    D = vae.memory_used_decode([1, *latent'], vae_dtype)  one decode (latent' = the size the reward scores)
    need(b) = W + b·A + D   on a GPU, against C = mm.get_total_memory(device) − mm.extra_reserved_memory()
    need(b) =     b·A + D   on a CPU (the weights already sit in RAM), against C = mm.get_free_memory(cpu)

b is max_batch when it is set, else the largest batch that fits (1..16; results never depend on it).
On a GPU, need(b) > C is a warning in the node's text, the report (report["warnings"]) and the log, never a silent
fall into streaming: ComfyUI would load only part of the group and stream FLUX's weights on every step. The
warning names what fits, in this order: a reward whose weights fit (when the reward is what overflows), a
smaller max_batch (when one candidate per call fits), else the largest image size that fits. On a CPU nothing
streams: the search would swap or run out of memory after minutes, so need(b) > C is refused before the first
model call (ValueError naming the size, the estimate, the work in NFE × image tokens, and the max_batch or
image size that fits)."""
import logging
import math
from dataclasses import dataclass, field

import torch

import comfy.model_management as mm

GB = 1024 ** 3
BATCH_CAP = 16


def gb(n):
    return f"{n / GB:.1f} GB" if n >= GB / 10 else f"{n / 2 ** 20:.0f} MB"


class CoResident:
    """Memory policy: the diffusion model, the VAE and the reward models are loaded as one group, and every load
    during the search names the whole group. ComfyUI's free_memory() never evicts a model named in the same
    load call, so scoring a candidate cannot push FLUX out and make every later step stream its weights
    (anchors §3.4). Before each decode + score, `ensure(memory)` frees that much for the VAE's own load call
    by evicting models outside the group only. If the group does not fit, ComfyUI loads what fits (lowvram):
    `plan` warns about that before the search starts."""

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


def is_cpu(device):
    return torch.device(device).type == "cpu"


@dataclass
class Fit:
    """One search's memory estimate (bytes) and the batch it runs with; `problem()` applies the fit rule."""

    device: str
    on_cpu: bool
    weights: dict                  # part name -> bytes (counted on a GPU only)
    activations: int               # A: one candidate in one model call
    decode: int                    # D: one decode
    capacity: int                  # C
    batch: int                     # candidates per model call (max_batch, or the largest that fits)
    latent_hw: tuple               # latent (h, w)
    px_per_latent: int
    work: str                      # NFE × tokens, for the messages
    reward_name: str = "reward"
    reward_weights: int = 0
    warnings: list = field(default_factory=list)

    def need(self, batch=None):
        w = 0 if self.on_cpu else sum(self.weights.values())
        return w + (self.batch if batch is None else batch) * self.activations + self.decode

    def size_px(self, scale=1.0):
        h, w = self.latent_hw
        return tuple(max(64, int(v * self.px_per_latent * scale) // 64 * 64) for v in (h, w))

    def breakdown(self):
        parts = [] if self.on_cpu else [f"{k} {gb(v)}" for k, v in self.weights.items()]
        parts += [f"activations for {self.batch} candidate{'s' * (self.batch > 1)} per call "
                  f"{gb(self.batch * self.activations)}", f"one decode {gb(self.decode)}"]
        return " + ".join(parts) + f" = {gb(self.need())}"

    def remedy(self):
        """What fits, in the rule's order (reward, max_batch, image size)."""
        weights = 0 if self.on_cpu else sum(self.weights.values())
        room = self.capacity - (weights - self.reward_weights) - self.activations - self.decode
        if not self.on_cpu and self.reward_weights and weights + self.activations + self.decode > self.capacity \
                and room > 0:
            return (f"use a reward whose weights take under {gb(room)} (the reward '{self.reward_name}' takes "
                    f"{gb(self.reward_weights)})")
        if self.batch > 1 and self.need(1) <= self.capacity:
            fits = max(1, int((self.capacity - weights - self.decode) // max(self.activations, 1)))
            return f"set max_batch to {min(fits, self.batch - 1)} (results do not depend on it)"
        spare = self.capacity - weights
        if spare <= 0:
            return ("the weights alone do not fit: load the diffusion model in fp8 (Load Diffusion Model, "
                    f"weight_dtype fp8_e4m3fn) or use a smaller reward than '{self.reward_name}'")
        scale = math.sqrt(spare / max(self.activations + self.decode, 1))
        w, h = reversed(self.size_px(scale))
        return (f"use a smaller image: at most about {w}×{h} px fits (EmptySD3LatentImage width/height)"
                + (" with max_batch 1" if self.batch > 1 else ""))

    def problem(self):
        """None when need(batch) ≤ capacity, else the message (a warning on a GPU, a refusal on a CPU)."""
        if self.need() <= self.capacity:
            return None
        h, w = self.size_px()
        where = (f"only {gb(self.capacity)} of RAM is free" if self.on_cpu else
                 f"the GPU ({self.device}) has {gb(self.capacity)}")
        head = f"FlowSearch memory: a {w}×{h} px search needs {self.breakdown()} (ComfyUI's estimates), but {where}"
        if self.on_cpu:
            return (f"{head}; on the CPU it would swap or run out of memory after minutes ({self.work}). Fix: "
                    f"{self.remedy()}.")
        return (f"{head}: ComfyUI will keep part of the weights off the GPU and stream them on every step "
                f"(many times slower). Fix: {self.remedy()}.")


def _weights(model_patcher, vae, reward):
    from ..rewards import comfy_glue
    rw = sum(p.model_size() for p in comfy_glue.patchers(reward))
    parts = {"diffusion model": model_patcher.model_size(), "VAE": vae.model_size()}
    if rw:
        parts[f"reward '{reward.name}'"] = rw
    return parts, rw


def plan(model_patcher, vae, reward, latent_shape, requested, nfe, decode_hw=None):
    """The search's Fit: estimate, batch size, and the rule applied (ValueError on a CPU, a warning on a GPU)."""
    device = model_patcher.load_device
    on_cpu = is_cpu(device)
    shape = [1, *latent_shape]
    dec_shape = [1, latent_shape[0], *(decode_hw or latent_shape[-2:])]
    act = int(model_patcher.model.memory_required(shape))
    dec = int(vae.memory_used_decode(dec_shape, vae.vae_dtype))
    weights, rw = _weights(model_patcher, vae, reward)
    cap = mm.get_free_memory(device) if on_cpu else mm.get_total_memory(device) - mm.extra_reserved_memory()
    up = getattr(vae, "downscale_ratio", 8)
    up = up if isinstance(up, int) else 8
    tokens = math.prod(latent_shape[-2:]) // 4
    fit = Fit(str(device), on_cpu, weights, act, dec, int(cap), 1, tuple(latent_shape[-2:]), up,
              f"{nfe} model evaluations over {tokens:,} image tokens each", reward.name, rw)
    spare = cap - (0 if on_cpu else sum(weights.values())) - dec
    fit.batch = int(requested) if requested else int(max(1, min(BATCH_CAP, spare // max(act, 1))))
    msg = fit.problem()
    if msg and on_cpu:
        raise ValueError(msg)
    if msg:
        logging.warning(msg)
        fit.warnings.append(msg)
    return fit
