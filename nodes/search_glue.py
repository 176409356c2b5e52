"""ComfyUI side of a search: model call, VAE decode for the reward, progress/preview/cancel, memory, outputs.

The search itself is `sampling.search` (pure torch). This module only adapts ComfyUI objects to its callables."""
import io as _io
import json
import math

import torch
import torch.nn.functional as F

import comfy.model_management as mm
import latent_preview

from ..sampling.ksampler import clock_from_sigmas
from ..sampling.search import search as run_search
from .sampling_nodes import flow_parametrisation

PRESETS = {  # artist-facing preset -> (method, paper defaults that differ from the method's own)
    "RBF (paper)": ("rbf", {}),
    "SVDD": ("svdd", {}),
    "SMC": ("smc", {}),
    "SoP": ("sop", {}),
    "CoDe": ("code", {}),
    "Best-of-N": ("bon", {}),
    "Noise search": ("noise_search", {}),
}
METHODS = ["rbf", "svdd", "smc", "sop", "code", "bon", "noise_search"]
# options the ComfyUI side handles itself (popped from the node's options JSON before the search sees the rest)
GLUE_OPTIONS = {"reward_resolution": 0}


def parse_options(text):
    """The node's advanced 'options' field: a JSON object of method options ('' = none)."""
    text = (text or "").strip()
    if not text:
        return {}
    try:
        opts = json.loads(text)
    except ValueError as e:
        raise ValueError(f"options must be a JSON object such as {{\"n\": 4}}; could not parse it: {e}") from None
    if not isinstance(opts, dict):
        raise ValueError('options must be a JSON object such as {"n": 4}')
    return opts


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


def split_options(options):
    """(search options, glue options): the keys of GLUE_OPTIONS are handled here, the rest go to the search."""
    options = dict(options or {})
    glue = {k: options.pop(k, v) for k, v in GLUE_OPTIONS.items()}
    r = glue["reward_resolution"]
    if isinstance(r, bool) or not isinstance(r, int) or r < 0:
        raise ValueError(f"reward_resolution must be an integer number of pixels ≥ 0 (0 = decode at full size), "
                         f"got {r!r}")
    if 0 < r < 8:
        raise ValueError(f"reward_resolution={r} is below one latent pixel (8 px); use 0 (full size) or e.g. 224")
    return options, glue


def reward_fn(reward, decoder, prompt):
    if reward.needs_prompt and not (prompt or "").strip():
        raise ValueError(f"The reward '{reward.name}' scores how well the image matches a text: fill in the prompt "
                         "field of the FlowSearch node (the same text as your CLIPTextEncode).")

    def score(x0):
        return reward(decoder(x0), prompt or None)
    return score


class Progress:
    """ComfyUI progress bar over the NFE budget with a preview of the best clean estimate; Cancel checks."""

    def __init__(self, model_patcher, budget, preview_every=None):
        self.cb = latent_preview.prepare_callback(model_patcher, budget)
        self.budget, self.last = budget, -1
        self.every = preview_every or max(1, budget // 50)

    def __call__(self, event):
        mm.throw_exception_if_processing_interrupted()
        nfe = int(event["nfe"])
        if nfe - self.last >= self.every or nfe >= self.budget:
            self.last = nfe
            self.cb(nfe - 1, event["best_x0"], None, self.budget)


def autograd_ready(module):
    """ComfyUI runs nodes in torch.inference_mode(), so weights loaded there cannot take part in a backward
    pass. Replace such parameters and buffers by ordinary copies, once, in place."""
    if module is None:
        return
    with torch.inference_mode(False):
        for m in module.modules():
            for name, p in list(m.named_parameters(recurse=False)):
                if p.is_inference():
                    setattr(m, name, torch.nn.Parameter(p.clone(), requires_grad=False))
            for name, b in list(m.named_buffers(recurse=False)):
                if b is not None and b.is_inference():
                    m.register_buffer(name, b.clone(), persistent=name not in m._non_persistent_buffers_set)


def straight_through(x0, x_in, gain):
    """x0̂ with ∂x0̂/∂x_in = gain·I: the gradient of a reward through the clean estimate without backpropagating
    through the diffusion model (x0̂ = x_t − t·v with v held fixed; gain = ∂x_t/∂x_in)."""
    return x0.detach() + gain * (x_in - x_in.detach())


def sample_search(model, x, sigmas, extra_args=None, callback=None, disable=None, *, reward, vae, prompt, method,
                  nfe_budget, options, max_batch, finish_steps, guidance_scale, result_box):
    """KSAMPLER function: one reward-guided search per latent in the batch, on the grid given by `sigmas`."""
    if guidance_scale > 0:
        autograd_ready(vae.first_stage_model)
        for leaf in (reward.surrogate() or reward).leaves():
            autograd_ready(leaf.net)
        with torch.inference_mode(False):
            return _sample_search(model, x.clone(), sigmas, extra_args, reward=reward, vae=vae, prompt=prompt,
                                  method=method, nfe_budget=nfe_budget, options=options, max_batch=max_batch,
                                  finish_steps=finish_steps, guidance_scale=guidance_scale, result_box=result_box)
    return _sample_search(model, x, sigmas, extra_args, reward=reward, vae=vae, prompt=prompt, method=method,
                          nfe_budget=nfe_budget, options=options, max_batch=max_batch, finish_steps=finish_steps,
                          guidance_scale=guidance_scale, result_box=result_box)


def _sample_search(model, x, sigmas, extra_args, *, reward, vae, prompt, method, nfe_budget, options, max_batch,
                   finish_steps, guidance_scale, result_box):
    extra_args = extra_args or {}
    patcher = model.inner_model.model_patcher
    kind, interpolant = flow_parametrisation(patcher.get_model_object("model_sampling"), "FlowSearch")
    grid = [float(v) for v in clock_from_sigmas(sigmas, interpolant, kind)]
    options, glue_opts = split_options(options)
    memory = CoResident(patcher, vae, reward)
    decoder = LatentDecoder(vae, patcher, differentiable=guidance_scale > 0, memory=memory,
                            reward_resolution=glue_opts["reward_resolution"])
    decoder.check(x.shape[1])
    max_batch = batch_size_from_memory(patcher, vae, x.shape[1:], max_batch)
    if guidance_scale > 0 and reward.surrogate() is None:
        raise ValueError(f"Gradient guidance needs a differentiable reward; '{reward.name}' is not. Set "
                         "guidance_scale to 0, or use an aesthetic / CLIP / PickScore / ImageReward reward.")
    score = reward_fn(reward.surrogate() if guidance_scale > 0 and not reward.differentiable else reward, decoder,
                      prompt)
    seed = int(extra_args.get("seed", 0))
    s_in = x.new_ones([1])
    progress = Progress(patcher, nfe_budget * x.shape[0])
    done = 0

    def denoise(xb, sig):
        with torch.no_grad():
            x0 = model(xb.detach(), sig.to(xb.dtype) * s_in, **extra_args)
        if not xb.requires_grad:
            return x0
        gain = 1.0 if kind == "linear" else (1.0 / (1.0 + sig.to(xb.dtype))).reshape(-1, *[1] * (xb.ndim - 1))
        return straight_through(x0, xb, gain)

    def on_event(event):
        progress({**event, "nfe": done + event["nfe"]})

    out, results = [], []
    with memory:
        for i in range(x.shape[0]):
            res = run_search(denoise, score, tuple(x.shape[1:]), method=method, nfe_budget=nfe_budget,
                             steps=len(grid) - 1, interpolant=interpolant, grid=grid, seed=seed + i,
                             max_batch=max_batch, callback=on_event, parametrisation=kind, finish_steps=finish_steps,
                             guidance_scale=guidance_scale, device=x.device, dtype=x.dtype, **options)
            done += res.nfe
            res.options.update({k: v for k, v in glue_opts.items() if v != GLUE_OPTIONS[k]})
            out.append(res.sample)
            results.append(res)
    result_box["results"], result_box["decodes"] = results, decoder.decodes
    return torch.cat(out).to(x.dtype)


def batch_size_from_memory(model_patcher, vae, latent_shape, requested, cap=16):
    """Candidates per model call: `requested` if set, else what the free memory allows for the model's
    activations plus decoding them (≤ cap). Results never depend on it (per-particle noise streams)."""
    if requested:
        return int(requested)
    per = model_patcher.model.memory_required([1, *latent_shape]) + vae.memory_used_decode([1, *latent_shape],
                                                                                           vae.vae_dtype)
    free = mm.get_free_memory(model_patcher.load_device)
    return int(max(1, min(cap, free // max(per, 1))))


def reward_plot(results, width=640, height=400):
    """Best reward so far vs NFE for each search, as an IMAGE [1, H, W, 3]."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image
    fig, ax = plt.subplots(figsize=(width / 100, height / 100), dpi=100)
    for i, res in enumerate(results):
        pts = [(e["nfe"], e["best_reward"]) for e in res.trace
               if "best_reward" in e and e["best_reward"] is not None and math.isfinite(e["best_reward"])]
        if pts:
            ax.step(*zip(*pts), where="post", label=f"{res.method} seed {res.options.get('seed')}")
    ax.set_xlabel("NFE (model evaluations)")
    ax.set_ylabel("best reward so far")
    ax.set_title("FlowSearch: reward vs compute")
    ax.grid(alpha=0.3)
    if results:
        ax.legend(loc="lower right", fontsize=8)
    buf = _io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    img = Image.open(buf).convert("RGB")
    return torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).reshape(img.height, img.width, 3).float().div(
        255).unsqueeze(0)


@torch.no_grad()
def decode_images(vae, model_patcher, latents):
    """Full-size IMAGEs of model-space latents (the node's outputs), through the same decoder the search uses."""
    return LatentDecoder(vae, model_patcher)(latents)
