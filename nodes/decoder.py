"""Decoding clean-estimate latents to IMAGEs: for the reward during a search, and for the node's outputs."""
import functools
import math
import time

import torch
import torch.nn.functional as F

import comfy.model_management as mm

PROBE_ATTR = "_flowsearch_channels_last"  # per-VAE cache of the CPU layout probe: {device type: bool}
PROBE_MARGIN = 0.9  # channels-last must be ≥ 10 % faster to be chosen (so timing noise does not flip the choice)


class LatentDecoder:
    """Decodes clean-estimate latents (model space) to IMAGEs for the reward, in batches ComfyUI sizes.

    reward_resolution (the reward's copy of each candidate; the node's outputs are always full size):
      "auto"  the smallest decode whose shorter side is not below `input_size`, the size the reward's processor
              resizes to (rewards/base.py `Reward.input_size`); full size when the reward declares none
              (size-sensitive rewards such as JPEG) or the image is not larger. The latent is area-downsampled
              first (≈ (input_size/side)² of the decode cost).
      "full" or 0   full size.
      N > 0   the latent is area-downsampled so the decoded image's longer side is at most N pixels.
    reward_decoder "taesd" scores through ComfyUI's tiny TAESD decoder (models/vae_approx) instead of the VAE: at
              the reward's size or, under "auto", at the full latent when the smaller one loses the ranking.
    check=(reward, prompt): "auto" and "taesd" keep a cheap route (`routes`) only if it keeps the reward's ranking
    (RankingCheck, on the search's first candidates); the measured agreement is in docs/performance.md.
    On a CPU VAE the latent layout (channels-last or contiguous) is chosen by a one-time timed probe per VAE
    object and device (cached on the VAE); the two layouts decode identically up to float rounding. Large CPU
    images are decoded a few at a time (see CPU_DECODE_POSITIONS)."""

    def __init__(self, vae, model_patcher, differentiable=False, memory=None, reward_resolution=0, input_size=None,
                 reward_decoder="vae", check=None):
        self.vae, self.latent_format = vae, model_patcher.model.latent_format
        self.differentiable, self.memory = differentiable, memory
        self.reward_resolution = "full" if reward_resolution in (0, None, "full") else reward_resolution
        if differentiable and self.reward_resolution == "auto":
            self.reward_resolution = "full"  # gradient guidance: no ranking check runs, so auto stays at full size
        self.input_size = None if input_size is None else int(input_size)
        self.cpu = torch.device(getattr(vae, "device", "cpu")).type == "cpu"
        taesd = reward_decoder == "taesd"
        self.taesd = load_taesd(self.latent_format, getattr(vae, "device", "cpu")) if taesd else None
        # the cheap route is kept only if it ranks the first candidates as the full decode does
        checked = self.reward_resolution == "auto" or self.taesd is not None  # an explicit N px is the user's call
        self.ranking = RankingCheck(*check) if check is not None and checked and not differentiable else None
        self.decodes = 0
        self._routes = {}  # (h, w) → routes()

    @property
    def channels_last(self):
        """Whether CPU decodes take a channels-last latent (the probe's cached answer; False off the CPU)."""
        return bool(self.cpu and getattr(self.vae, PROBE_ATTR, {}).get("cpu", False))

    def _upscale(self):
        up = getattr(self.vae, "upscale_ratio", getattr(self.vae, "downscale_ratio", 8))
        return up if isinstance(up, int) else 8

    def reward_size(self, h, w):
        """Latent (h, w) the reward's images are decoded from."""
        r, up = self.reward_resolution, self._upscale()
        if r == "full":
            return h, w
        if r == "auto":
            s = self.input_size
            if s is None or min(h, w) * up <= s:
                return h, w
            short = math.ceil(s / up)  # smallest latent side whose image side is ≥ s
            f = short / min(h, w)
            return (short, max(short, math.ceil(w * f))) if h <= w else (max(short, math.ceil(h * f)), short)
        if max(h, w) * up <= r:
            return h, w
        f = r / (max(h, w) * up)
        return max(1, round(h * f)), max(1, round(w * f))

    def _shrink(self, z):
        size = self.reward_size(*z.shape[-2:])
        return z if tuple(size) == tuple(z.shape[-2:]) else F.interpolate(z, size=size, mode="area")

    def check(self, latent_channels):
        want = getattr(self.vae, "latent_channels", None)
        if want is not None and want != latent_channels:
            raise ValueError(f"The VAE expects {want}-channel latents but the model makes {latent_channels}-channel "
                             "latents: use the VAE that belongs to the diffusion model (FLUX: ae.safetensors).")

    def __call__(self, x0, full=False):
        """IMAGEs of model-space latents x0: the reward's copy (a cheap route), or full size when `full`."""
        self.decodes += x0.shape[0]
        routes = [] if full else self.routes(*x0.shape[-2:])
        if not routes or (self.ranking is not None and self.ranking.failed):
            return self._full(x0)
        if self.ranking is None:  # an explicit size: the user's call, unchecked
            return routes[0][1](x0)
        if self.ranking.open:
            return self.ranking(x0, self._full(x0), routes)
        return routes[self.ranking.choice][1](x0)

    def routes(self, h, w):
        """The cheap routes for the reward's copy of an (h, w) latent, cheapest first: [(label, fn(x0))]. VAE: the
        downsampled latent (none when that is full size). TAESD: at the reward's size and, under "auto", also at the
        full latent (a cheaper decoder with all the latent's detail), so the check can fall back to it."""
        if (h, w) not in self._routes:
            size = tuple(self.reward_size(h, w))
            if self.taesd is None:
                routes = [] if size == (h, w) else [(f"vae {size[0]}x{size[1]}", self._vae_small)]
            else:
                sizes = [size] + ([(h, w)] if self.reward_resolution == "auto" and size != (h, w) else [])
                routes = [(f"taesd {a}x{b}", functools.partial(self._taesd, size=(a, b))) for a, b in sizes]
            self._routes[(h, w)] = routes
        return self._routes[(h, w)]

    def _full(self, x0):
        return self._vae(self.latent_format.process_out(x0))

    def _vae_small(self, x0):
        return self._vae(self._shrink(self.latent_format.process_out(x0)))

    def _vae(self, z):
        if self.memory is not None and self.memory.can_evict:
            self.memory.ensure(self.vae.memory_used_decode(z.shape, self.vae.vae_dtype))
        if self.differentiable and torch.is_grad_enabled() and z.requires_grad:
            # ComfyUI's VAE.decode detaches; decode through the torch module so gradients reach the latent
            mm.load_models_gpu([self.vae.patcher])
            out = self.vae.first_stage_model.decode(z.to(self.vae.vae_dtype).to(self.vae.device))
            return self.vae.process_output(out.float()).movedim(1, -1)
        if self.cpu and z.ndim == 4:
            if self.probe(z):
                z = z.contiguous(memory_format=torch.channels_last)
            # on a CPU, decoding a batch of large images is slower per image than one at a time (the activations
            # leave the cache: 256 px, 0.37 s/image at batch 1 vs 0.41-0.44 s at batch 2-4); small ones batch well
            rows = max(1, self.CPU_DECODE_POSITIONS // (z.shape[-2] * z.shape[-1]))
            if z.shape[0] > rows:
                return torch.cat([self._decode(z[i:i + rows]) for i in range(0, z.shape[0], rows)])
        return self._decode(z)

    CPU_DECODE_POSITIONS = 1024  # latent positions per CPU decode call (32×32 = one 256 px image)

    def probe(self, z):
        """Channels-last or not, for this VAE on the CPU: measured once (2 timed decodes of one small latent per
        layout, best of each; ≤ 32×32 latent) and cached on the VAE object; chosen only when ≥ 10 % faster."""
        cache = getattr(self.vae, PROBE_ATTR, None)
        if cache is None:
            cache = {}
            setattr(self.vae, PROBE_ATTR, cache)
        if "cpu" not in cache:
            zs = z[:1, :, :32, :32].detach().contiguous()
            best = {}
            for layout in (torch.contiguous_format, torch.channels_last) * 2:
                t = time.perf_counter()
                self._decode(zs.contiguous(memory_format=layout))
                best[layout] = min(best.get(layout, math.inf), time.perf_counter() - t)
            cache["cpu"] = best[torch.channels_last] < PROBE_MARGIN * best[torch.contiguous_format]
        return cache["cpu"]

    def _taesd(self, x0, size):
        """The reward's copy through ComfyUI's tiny TAESD decoder from the latent at `size`: TAESD reads model-space
        latents (as its latent previews do), and area downsampling commutes with the latent format's affine map."""
        x = x0 if tuple(size) == tuple(x0.shape[-2:]) else F.interpolate(x0, size=size, mode="area")
        p = next(self.taesd.parameters())
        img = self.taesd.decode(x.to(device=p.device, dtype=p.dtype))
        return ((img.float() + 1) / 2).clamp(0, 1).movedim(1, -1).to(x0.device)

    def _decode(self, z):
        img = self.vae.decode(z)
        return img.reshape(-1, *img.shape[-3:]) if img.ndim > 4 else img


def spearman(a, b):
    """Spearman rank correlation of two score vectors; ties are broken by position (so two constant vectors give
    1.0: RankingCheck's tie rule), and a single candidate gives 1.0."""
    ra, rb = (v.argsort(stable=True).argsort().double() for v in (a, b))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = float(ra.norm() * rb.norm())
    return float((ra * rb).sum()) / den if den > 0 else 1.0


class RankingCheck:
    """Keeps a cheap route for the reward's copy (smaller decode or TAESD) only if, on the search's first ROWS
    candidates, the reward ranks the cheap images as it ranks full-size ones: Spearman ≥ MIN_SPEARMAN and the same
    best candidate (and the full-size scores are not all equal: a tie, e.g. a reward clamped at 0, measures nothing).
    Given several routes (cheapest first) it measures each and keeps the first that passes (`choice`).
    Until then candidates are decoded at full size (the first ROWS also every cheap way) and scored on the full-size
    images, so those decisions are exact; afterwards the chosen route runs alone, or none if every route failed.
    It uses exactly the first ROWS candidates in evaluation order, so the decision does not depend on max_batch."""

    ROWS, MIN_SPEARMAN = 8, 0.95

    def __init__(self, reward, prompt):
        self.reward, self.prompt = reward, prompt or None
        self.full, self.cheap = [], {}
        self.result, self.choice = None, None  # result: {"spearman", "top1", "tied", "kept", "route", "routes"}

    @property
    def open(self):
        return self.result is None

    @property
    def failed(self):
        return self.result is not None and not self.result["kept"]

    def __call__(self, x0, full_images, routes):
        """Score the first rows at full size and by every route [(label, fn(x0))]; decide once ROWS are in."""
        need = self.ROWS - len(self.full)
        with torch.no_grad():
            self.full += self.reward(full_images[:need], self.prompt).double().cpu().tolist()
            for label, fn in routes:
                self.cheap.setdefault(label, []).extend(
                    self.reward(fn(x0[:need]), self.prompt).double().cpu().tolist())
        if len(self.full) >= self.ROWS:
            self._decide([label for label, _ in routes])
        return full_images

    def _decide(self, labels):
        a = torch.tensor(self.full)
        tied = bool((a == a[0]).all())  # one full-size score for all (e.g. a clamped reward): nothing measured
        rows = []
        for label in labels:
            b = torch.tensor(self.cheap[label])
            rho, top1 = spearman(a, b), int(a.argmax()) == int(b.argmax())
            rows.append({"route": label, "spearman": rho, "top1": top1,
                         "kept": rho >= self.MIN_SPEARMAN and top1 and not tied})
        self.choice = next((i for i, r in enumerate(rows) if r["kept"]), None)
        pick = rows[self.choice if self.choice is not None else -1]  # the kept route, else the most faithful one
        self.result = {**pick, "tied": tied, "routes": rows}


def load_taesd(latent_format, device):
    """ComfyUI's TAESD with the model's `models/vae_approx/<taesd_decoder_name>*` file (what its previews use)."""
    import folder_paths
    from comfy.taesd.taesd import TAESD
    name = getattr(latent_format, "taesd_decoder_name", None)
    files = [f for f in folder_paths.get_filename_list("vae_approx") if name and f.startswith(name)]
    if not files:
        raise ValueError(f'reward_decoder "taesd" needs ComfyUI\'s tiny decoder for this model: put '
                         f"{name or 'its TAESD decoder'}.safetensors (FLUX: taef1_decoder.safetensors from "
                         'madebyollin/taesd) in models/vae_approx, or use "reward_decoder": "vae"')
    path = folder_paths.get_full_path("vae_approx", sorted(files)[0])
    return TAESD(None, path, latent_channels=latent_format.latent_channels).to(device).eval()


@torch.no_grad()
def decode_images(vae, model_patcher, latents):
    """Full-size IMAGEs of model-space latents (the node's outputs), through the same decoder the search uses."""
    return LatentDecoder(vae, model_patcher)(latents, full=True)
