"""Thin, version-tolerant helpers around transformers (4.57 and 5.x), imported lazily by the scorers."""
from __future__ import annotations

from pathlib import Path

import torch

from .base import RewardError
from .folders import layout_message, local
from .preprocess import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, interp_mode


def transformers():
    """The transformers module, or a RewardError saying how to get it (disables only the scorer asking)."""
    try:
        import transformers as tf
    except ImportError as e:  # pragma: no cover - transformers ships with ComfyUI
        raise RewardError("this reward needs the 'transformers' package (pip install 'transformers>=4.57')") from e
    return tf


def tf_class(name: str):
    tf = transformers()
    cls = getattr(tf, name, None)
    if cls is None:
        raise RewardError(f"transformers {tf.__version__} has no {name}; this reward needs transformers>=4.57")
    return cls


def load_tokenizer(path, kind: str, **kw):
    return local(tf_class("AutoTokenizer").from_pretrained, path, kind, **kw)


def load_image_processor(path, kind: str, cls: str | None = None):
    fn = tf_class(cls).from_pretrained if cls else tf_class("AutoImageProcessor").from_pretrained
    if not (Path(path) / "preprocessor_config.json").exists():
        raise RewardError(f"'{path}' has no preprocessor_config.json: {layout_message(kind, path)}")
    return local(fn, path, kind)


def load_model(cls_name, path, kind: str, dtype: torch.dtype = torch.float32, **kw):
    cls = tf_class(cls_name) if isinstance(cls_name, str) else cls_name
    m = local(cls.from_pretrained, path, kind, **{_dtype_kw(): dtype}, **kw)
    return m.eval().requires_grad_(False)


def _dtype_kw() -> str:
    major = int(transformers().__version__.split(".")[0])
    return "dtype" if major >= 5 else "torch_dtype"


def _get(d, key, default=None):
    if d is None:
        return default
    if isinstance(d, dict):
        return d.get(key, default)
    return getattr(d, key, default)


def ip_geometry(ip) -> dict:
    """Resize/crop/normalise parameters of an image processor, as plain values (works for dict or SizeDict)."""
    size = getattr(ip, "size", None)
    crop = getattr(ip, "crop_size", None)
    if isinstance(size, int):
        size = {"shortest_edge": size}
    g = {
        "shortest_edge": _get(size, "shortest_edge"),
        "longest_edge": _get(size, "longest_edge"),
        "height": _get(size, "height"),
        "width": _get(size, "width"),
        "crop": (_get(crop, "height"), _get(crop, "width")) if crop is not None and _get(crop, "height") else None,
        "do_crop": bool(getattr(ip, "do_center_crop", False)),
        "mean": tuple(getattr(ip, "image_mean", None) or OPENAI_CLIP_MEAN),
        "std": tuple(getattr(ip, "image_std", None) or OPENAI_CLIP_STD),
        "mode": interp_mode(getattr(ip, "resample", None)),
    }
    return g


def to_tensor_output(o):
    """transformers 5.x returns output objects from get_*_features; 4.x tensors."""
    return getattr(o, "pooler_output", o) if not torch.is_tensor(o) else o

