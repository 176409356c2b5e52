"""FlowSearch reward scorers: usable from plain Python (no ComfyUI needed) and inside ComfyUI.

    import rewards
    r = rewards.load_reward("aesthetic", "ComfyUI/models/rewards/laion-aesthetic")
    scores = r(images)                       # images: float [B, H, W, 3] in [0, 1] -> float32 [B]
    r2 = rewards.load_reward("counting", "ComfyUI/models/rewards/grounding-dino-base",
                             classes=["airplanes", "camels"], counts=[6, 7])

Every reward has ``name``, ``differentiable``, ``needs_prompt``, ``needs_counts``, ``to(device)``, ``surrogate()``
and is called as ``reward(images, prompt)``. Model families import transformers lazily: a missing optional package
disables that scorer only.
"""
from __future__ import annotations

from .base import CompositeReward, Reward, RewardError, as_bchw, expand_prompts
from .simple import ColorReward, ImageStatReward, JpegReward

__all__ = ["Reward", "RewardError", "CompositeReward", "JpegReward", "ImageStatReward", "ColorReward",
           "load_reward", "KINDS", "as_bchw", "expand_prompts"]


def _lazy(module, fn_name):
    def load(path, **kw):
        import importlib

        return getattr(importlib.import_module(f".{module}", __name__), fn_name)(path, **kw)
    return load


#: kind -> loader(path, device=..., dtype=..., batch_size=..., **options)
KINDS = {
    "clip_score": _lazy("clip_rewards", "load_clip_score"),
    "pickscore": _lazy("clip_rewards", "load_pickscore"),
    "hpsv2": _lazy("clip_rewards", "load_hpsv2"),
    "aesthetic": _lazy("clip_rewards", "load_aesthetic"),
    "imagereward": _lazy("imagereward", "load_imagereward"),
    "vqascore": _lazy("vqascore", "load_vqascore"),
    "counting": _lazy("counting", "load_counting"),
}


def load_reward(kind: str, path=None, **kw) -> Reward:
    """Load a reward of ``kind`` (see ``KINDS``, plus the weight-free ``jpeg``, ``brightness``, ``saturation``,
    ``color``) from a local folder. Raises :class:`RewardError` with the expected layout when the folder is wrong."""
    if kind in ("jpeg", "jpeg_compressibility", "jpeg_incompressibility"):
        return JpegReward(incompressible=kind.endswith("incompressibility") or kw.pop("incompressible", False), **kw)
    if kind in ("brightness", "saturation", "contrast"):
        return ImageStatReward(kind, **kw)
    if kind in ("color", "colour"):
        return ColorReward(**kw)
    if kind not in KINDS:
        raise RewardError(f"unknown reward kind '{kind}'; known: {', '.join(sorted(KINDS))}, jpeg, brightness, "
                          f"saturation, contrast, color")
    return KINDS[kind](path, **kw)
