"""Differentiable torch versions of the transformers image processors the rewards use.

Every function takes ``x``: ``[B, 3, H, W]`` float in [0, 1] and keeps the autograd graph (no PIL or numpy round
trip). Geometry follows the processors' own rules; the remaining differences come from the processors' uint8
rounding and their resampling filters (see ``tests/test_rewards_preprocess.py`` for the measured tolerances).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_MODES = {0: "nearest", 1: "bilinear", 2: "bilinear", 3: "bicubic", 4: "bilinear", 5: "bicubic",
          "nearest": "nearest", "bilinear": "bilinear", "bicubic": "bicubic"}


def interp_mode(resample, default: str = "bicubic") -> str:
    """PIL resample code (or a name) -> torch interpolate mode."""
    if resample is None:
        return default
    if hasattr(resample, "value"):
        resample = resample.value
    return _MODES.get(resample, default)


def resize(x: torch.Tensor, h: int, w: int, mode: str = "bicubic") -> torch.Tensor:
    if x.shape[-2:] == (h, w):
        return x
    if mode == "nearest":
        return F.interpolate(x, size=(h, w), mode="nearest")
    out = F.interpolate(x, size=(h, w), mode=mode, antialias=True, align_corners=False)
    # bicubic overshoots; the processors resample 8-bit images, which clips to [0, 1]
    return out.clamp(0.0, 1.0) if mode == "bicubic" else out


def normalize(x: torch.Tensor, mean, std) -> torch.Tensor:
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - m) / s


def shortest_edge_size(h: int, w: int, size: int, max_size: int | None = None) -> tuple[int, int]:
    """Output (h, w) of a shortest-edge resize, optionally capped on the longest edge (transformers' rule)."""
    raw = None
    if max_size is not None:
        lo, hi = float(min(h, w)), float(max(h, w))
        if hi / lo * size > max_size:
            raw = max_size * lo / hi
            size = int(round(raw))
    if (h <= w and h == size) or (w <= h and w == size):
        return h, w
    ref = raw if raw is not None else size
    if w < h:
        return int(ref * h / w), size
    return size, int(ref * w / h)


def center_crop(x: torch.Tensor, ch: int, cw: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    if h < ch or w < cw:  # pad like the processors do when the image is smaller than the crop
        ph, pw = max(ch - h, 0), max(cw - w, 0)
        x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
        h, w = x.shape[-2:]
    top = int(round((h - ch) / 2.0))
    left = int(round((w - cw) / 2.0))
    return x[..., top:top + ch, left:left + cw]


def clip_pixels(x, size: int = 224, crop: tuple[int, int] | None = None, mean=OPENAI_CLIP_MEAN,
                std=OPENAI_CLIP_STD, mode: str = "bicubic") -> torch.Tensor:
    """CLIPImageProcessor: shortest-edge resize, centre crop, normalise."""
    crop = crop or (size, size)
    h, w = shortest_edge_size(x.shape[-2], x.shape[-1], size)
    return normalize(center_crop(resize(x, h, w, mode), *crop), mean, std)


def fixed_pixels(x, h: int, w: int, mean=OPENAI_CLIP_MEAN, std=OPENAI_CLIP_STD, mode="bicubic") -> torch.Tensor:
    """BlipImageProcessor / SiglipImageProcessor: resize to a fixed size, normalise."""
    return normalize(resize(x, h, w, mode), mean, std)


def pad_to_square(x: torch.Tensor, fill) -> torch.Tensor:
    """LLaVA ``expand2square``: centre the image on a square canvas of colour ``fill`` (RGB in [0,1])."""
    b, c, h, w = x.shape
    if h == w:
        return x
    s = max(h, w)
    top, left = (s - h) // 2, (s - w) // 2
    canvas = torch.as_tensor(fill, dtype=x.dtype, device=x.device).view(1, c, 1, 1).expand(b, c, s, s)
    pad = F.pad(x, (left, s - w - left, top, s - h - top))
    mask = F.pad(torch.ones(1, 1, h, w, dtype=x.dtype, device=x.device), (left, s - w - left, top, s - h - top))
    return pad + canvas * (1 - mask)


def owlv2_pixels(x, size: int, mean=OPENAI_CLIP_MEAN, std=OPENAI_CLIP_STD, pad_value: float = 0.5) -> torch.Tensor:
    """Owlv2ImageProcessor: pad bottom/right to a square, resize to ``size``, normalise.

    The pad is grey (0.5) as in the original OWLv2 preprocessing and transformers 4.x; transformers 5.x's processor
    pads with 0.0 (identical for square images, which is what FLUX renders)."""
    h, w = x.shape[-2:]
    s = max(h, w)
    x = F.pad(x, (0, s - w, 0, s - h), value=pad_value)
    return normalize(resize(x, size, size, "bilinear"), mean, std)


def dino_pixels(x, shortest: int = 800, longest: int = 1333, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """GroundingDinoImageProcessor: shortest/longest-edge resize (bilinear), normalise; plus the pixel mask."""
    h, w = shortest_edge_size(x.shape[-2], x.shape[-1], shortest, longest)
    out = normalize(resize(x, h, w, "bilinear"), mean, std)
    return out, torch.ones(x.shape[0], h, w, dtype=torch.long, device=x.device)


def sam_pixels(x, longest: int = 1024, pad: int = 1024, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """SamImageProcessor: longest-edge resize (bilinear), normalise, pad bottom/right; returns the pixels and the
    resized (h, w)."""
    h, w = x.shape[-2:]
    scale = longest / max(h, w)
    nh, nw = int(h * scale + 0.5), int(w * scale + 0.5)
    out = normalize(resize(x, nh, nw, "bilinear"), mean, std)
    return F.pad(out, (0, pad - nw, 0, pad - nh)), (nh, nw)


def smart_resize(h: int, w: int, factor: int = 28, min_pixels: int = 56 * 56, max_pixels: int = 14 * 14 * 4 * 1280):
    """Qwen2-VL's grid rule: both sides multiples of ``factor``, area within [min_pixels, max_pixels]."""
    hb = max(factor, round(h / factor) * factor)
    wb = max(factor, round(w / factor) * factor)
    if hb * wb > max_pixels:
        beta = math.sqrt((h * w) / max_pixels)
        hb = max(factor, math.floor(h / beta / factor) * factor)
        wb = max(factor, math.floor(w / beta / factor) * factor)
    elif hb * wb < min_pixels:
        beta = math.sqrt(min_pixels / (h * w))
        hb = math.ceil(h * beta / factor) * factor
        wb = math.ceil(w * beta / factor) * factor
    return hb, wb


def qwen_vl_pixels(x, patch: int = 14, merge: int = 2, temporal: int = 2, min_pixels: int = 56 * 56,
                   max_pixels: int = 14 * 14 * 4 * 1280, mean=OPENAI_CLIP_MEAN, std=OPENAI_CLIP_STD):
    """Qwen2-VL / Qwen2.5-VL image processor: smart-resize (bicubic), normalise, repeat over the temporal patch and
    flatten in the processor's order. Returns (pixel_values ``[B*gh*gw, C*T*p*p]``, image_grid_thw ``[B, 3]``)."""
    b, c, h, w = x.shape
    rh, rw = smart_resize(h, w, patch * merge, min_pixels, max_pixels)
    gh, gw = rh // patch, rw // patch
    x = normalize(resize(x, rh, rw, "bicubic"), mean, std)
    x = x.unsqueeze(1).expand(b, temporal, c, rh, rw)
    x = x.reshape(b, 1, temporal, c, gh // merge, merge, patch, gw // merge, merge, patch)
    x = x.permute(0, 1, 4, 7, 5, 8, 3, 2, 6, 9)
    pv = x.reshape(b * gh * gw, c * temporal * patch * patch)
    thw = torch.tensor([[1, gh, gw]] * b, dtype=torch.long, device=x.device)
    return pv, thw
