"""CLIP-based rewards: CLIP score, PickScore, HPSv2 and the LAION aesthetic predictor.

All four share transformers' ``CLIPModel`` and the CLIP image geometry (shortest-edge bicubic resize, centre crop,
normalise), done in torch so gradients reach the image.

* CLIP score = ``100 * max(cos(img, txt), 0)`` (the CLIPScore convention).
* PickScore = ``logit_scale.exp() * cos`` with yuvalkirstain/PickScore_v1 (a CLIP-H ``CLIPModel``).
* HPSv2 = ``cos`` with the HPSv2 / v2.1 OpenCLIP ViT-H-14 checkpoint, converted to ``CLIPModel`` names at load time.
* LAION aesthetic v2 = MLP (768-1024-128-64-16-1) on the L2-normalised CLIP ViT-L/14 image embedding.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from . import _hf
from .base import Reward, RewardError, hi
from .folders import layout_message, load_state_dict, parse_dtype, require_dir, require_files, require_model_folder
from .preprocess import clip_pixels

AESTHETIC_HEAD_FILES = ("sac+logos+ava1-l14-linearMSE.pth", "aesthetic_head.safetensors", "aesthetic_head.pth")
HPS_FILES = ("HPS_v2.1_compressed.pt", "HPS_v2_compressed.pt", "HPS_v2.1.pt", "HPS_v2.pt")
TOKENIZER_FILES = ("tokenizer.json", "vocab.json")


class ClipGeometry:
    """The image side of a CLIP processor, as a differentiable torch function."""

    def __init__(self, ip):
        g = _hf.ip_geometry(ip)
        self.size = int(g["shortest_edge"] or g["height"] or 224)
        crop = g["crop"] if g["do_crop"] and g["crop"] else None
        self.crop = tuple(int(v) for v in crop) if crop else (self.size, self.size)
        self.mean, self.std, self.mode = g["mean"], g["std"], g["mode"]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return clip_pixels(x, self.size, self.crop, self.mean, self.std, self.mode)


class ClipReward(Reward):
    """Shared machinery: image/text embeddings of a ``CLIPModel`` (text embeddings cached per prompt)."""

    name = "clip_score"
    differentiable = True
    needs_prompt = True
    score_range = (15.0, 40.0)

    def __init__(self, model, tokenizer, image_processor, batch_size: int = 8, head: nn.Module | None = None):
        super().__init__(batch_size)
        mods = {"clip": model}
        if head is not None:
            mods["head"] = head
        self.net = nn.ModuleDict(mods)
        self.tokenizer = tokenizer
        self.geometry = ClipGeometry(image_processor)
        self.input_size = max(self.geometry.size, *self.geometry.crop)  # shortest-edge resize, then the crop
        self.dtype = next(model.parameters()).dtype
        self._text_cache: dict = {}

    @property
    def clip(self):
        return self.net["clip"]

    def image_embeds(self, x: torch.Tensor) -> torch.Tensor:
        pv = self.geometry(x).to(self.dtype)
        pooled = self.clip.vision_model(pixel_values=pv).pooler_output
        e = hi(self.clip.visual_projection(pooled))
        return e / e.norm(dim=-1, keepdim=True)

    def text_embeds(self, prompts: list[str]) -> torch.Tensor:
        key = (self._device, self.dtype)
        todo = [p for p in dict.fromkeys(prompts) if (p, key) not in self._text_cache]
        if todo:
            max_len = getattr(self.clip.config.text_config, "max_position_embeddings", 77)
            tok = self.tokenizer(todo, padding=True, truncation=True, max_length=max_len, return_tensors="pt")
            with torch.no_grad():
                out = self.clip.text_model(input_ids=tok["input_ids"].to(self._device),
                                           attention_mask=tok["attention_mask"].to(self._device))
                e = hi(self.clip.text_projection(out.pooler_output))
                e = e / e.norm(dim=-1, keepdim=True)
            if len(self._text_cache) > 256:
                self._text_cache.clear()
            for p, v in zip(todo, e):
                self._text_cache[(p, key)] = v
        return torch.stack([self._text_cache[(p, key)] for p in prompts])

    def cosine(self, x, prompts) -> torch.Tensor:
        return (self.image_embeds(x) * self.text_embeds([str(p) for p in prompts])).sum(-1)

    def _score(self, x, prompts, **kw):
        return 100.0 * self.cosine(x, prompts).clamp(min=0)


class PickScore(ClipReward):
    name = "pickscore"
    score_range = (16.0, 24.0)

    def _score(self, x, prompts, **kw):
        return hi(self.clip.logit_scale.exp()) * self.cosine(x, prompts)


class HPSv2(ClipReward):
    name = "hpsv2"
    score_range = (0.2, 0.35)

    def _score(self, x, prompts, **kw):
        return self.cosine(x, prompts)


class AestheticMLP(nn.Module):
    """LAION improved-aesthetic-predictor head: Linear layers at ``layers.{0,2,4,6,7}`` (dropouts in between)."""

    def __init__(self, dims: list[int]):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(dims[0], dims[1]), nn.Dropout(0.2), nn.Linear(dims[1], dims[2]), nn.Dropout(0.2),
            nn.Linear(dims[2], dims[3]), nn.Dropout(0.1), nn.Linear(dims[3], dims[4]), nn.Linear(dims[4], dims[5]))

    def forward(self, x):
        return self.layers(x)

    @classmethod
    def from_state_dict(cls, sd: dict) -> "AestheticMLP":
        try:
            dims = [sd["layers.0.weight"].shape[1]] + [sd[f"layers.{i}.weight"].shape[0] for i in (0, 2, 4, 6, 7)]
        except KeyError as e:
            raise RewardError(f"aesthetic head lacks key {e}; expected layers.{{0,2,4,6,7}}.weight/bias") from e
        m = cls(dims)
        m.load_state_dict({k: v.float() for k, v in sd.items() if k.startswith("layers.")})
        return m.eval().requires_grad_(False)


class LaionAesthetic(ClipReward):
    name = "laion_aesthetic"
    needs_prompt = False
    score_range = (3.0, 8.0)

    def _score(self, x, prompts, **kw):
        e = self.image_embeds(x).to(self.dtype)
        return hi(self.net["head"](e)).squeeze(-1)


# ---------------------------------------------------------------------------------------------------- loading
def _load_clip_parts(p: Path, kind: str, device, dtype, state_dict: dict | None = None):
    cfg_path = p / "config.json"
    if state_dict is None:
        require_model_folder(p, kind)
        model = _hf.load_model("CLIPModel", p, kind, dtype=dtype)
    else:
        config = _hf.local(_hf.tf_class("CLIPConfig").from_pretrained, p, kind) if cfg_path.exists() else None
        if config is None:
            raise RewardError(f"'{p}' has no config.json for the converted checkpoint: {layout_message(kind, p)}")
        model = _hf.tf_class("CLIPModel")(config)
        missing, unexpected = model.load_state_dict(state_dict, strict=False)
        missing = [k for k in missing if not k.endswith("position_ids")]
        if missing:
            raise RewardError(f"checkpoint in '{p}' does not fit config.json: missing {missing[:5]} "
                              f"(+{max(len(missing) - 5, 0)}); {layout_message(kind, p)}")
        model = model.to(dtype).eval().requires_grad_(False)
    require_files(p, kind, ("preprocessor_config.json",), TOKENIZER_FILES)
    tok = _hf.load_tokenizer(p, kind)
    ip = _hf.load_image_processor(p, kind, "CLIPImageProcessor")
    return model, tok, ip


def load_clip_score(path, device="cpu", dtype="auto", batch_size=8, variant: str = "clip_score") -> ClipReward:
    cls, kind = {"clip_score": (ClipReward, "clip"), "pickscore": (PickScore, "pickscore")}[variant]
    device = torch.device(device)
    p = require_dir(path, kind)
    model, tok, ip = _load_clip_parts(p, kind, device, parse_dtype(dtype, device))
    return cls(model, tok, ip, batch_size).to(device)


def load_pickscore(path, device="cpu", dtype="auto", batch_size=8) -> PickScore:
    return load_clip_score(path, device, dtype, batch_size, variant="pickscore")


def load_hpsv2(path, device="cpu", dtype="auto", batch_size=8) -> HPSv2:
    device = torch.device(device)
    p = require_dir(path, "hpsv2")
    ckpt = next((p / f for f in HPS_FILES if (p / f).exists()), None)
    if ckpt is None:
        ckpt = next(iter(sorted(p.glob("*.pt"))), None)
    sd = convert_open_clip(load_state_dict(ckpt)) if ckpt is not None else None
    if sd is None and not any((p / f).exists() for f in ("model.safetensors", "pytorch_model.bin")):
        raise RewardError(f"no HPSv2 checkpoint in '{p}': {layout_message('hpsv2', p)}")
    model, tok, ip = _load_clip_parts(p, "hpsv2", device, parse_dtype(dtype, device), state_dict=sd)
    return HPSv2(model, tok, ip, batch_size).to(device)


def load_aesthetic(path, device="cpu", dtype="auto", batch_size=8) -> LaionAesthetic:
    device = torch.device(device)
    p = require_dir(path, "aesthetic")
    head_file = next((p / f for f in AESTHETIC_HEAD_FILES if (p / f).exists()), None)
    if head_file is None:
        raise RewardError(f"no aesthetic head file ({' or '.join(AESTHETIC_HEAD_FILES)}) in '{p}': "
                          f"{layout_message('aesthetic', p)}")
    clip_dir = p / "clip" if (p / "clip" / "config.json").exists() else p
    dt = parse_dtype(dtype, device)
    model, tok, ip = _load_clip_parts(clip_dir, "aesthetic", device, dt)
    head = AestheticMLP.from_state_dict(load_state_dict(head_file)).to(dt)
    if head.layers[0].in_features != model.config.projection_dim:
        raise RewardError(f"aesthetic head expects {head.layers[0].in_features}-d CLIP embeddings but the CLIP in "
                          f"'{clip_dir}' gives {model.config.projection_dim}-d: {layout_message('aesthetic', p)}")
    return LaionAesthetic(model, tok, ip, batch_size, head=head).to(device)


# ---------------------------------------------------------------------------------------------------- OpenCLIP -> HF
_OC_BLOCK = {"ln_1": "layer_norm1", "ln_2": "layer_norm2", "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2",
             "attn.out_proj": "self_attn.out_proj"}


def convert_open_clip(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """OpenCLIP ``CLIP`` state dict (as in HPSv2 checkpoints) -> transformers ``CLIPModel`` names.

    Fused ``attn.in_proj_{weight,bias}`` are split into q/k/v; ``proj`` / ``text_projection`` matrices are transposed
    into ``nn.Linear`` weights."""
    out: dict[str, torch.Tensor] = {}
    blk = re.compile(r"^(visual\.)?transformer\.resblocks\.(\d+)\.(.+)\.(weight|bias)$")
    for k, v in sd.items():
        m = blk.match(re.sub(r"attn\.in_proj_(weight|bias)$", r"attn.in_proj.\1", k))
        if m:
            tower = "vision_model" if m.group(1) else "text_model"
            pre = f"{tower}.encoder.layers.{m.group(2)}."
            name, wb = m.group(3), m.group(4)
            if name == "attn.in_proj":
                for part, t in zip(("q", "k", "v"), v.chunk(3, dim=0)):
                    out[f"{pre}self_attn.{part}_proj.{wb}"] = t
            elif name in _OC_BLOCK:
                out[f"{pre}{_OC_BLOCK[name]}.{wb}"] = v
            else:
                raise RewardError(f"unexpected OpenCLIP key {k}")
            continue
        simple = {
            "visual.class_embedding": "vision_model.embeddings.class_embedding",
            "visual.conv1.weight": "vision_model.embeddings.patch_embedding.weight",
            "visual.ln_pre.weight": "vision_model.pre_layrnorm.weight",
            "visual.ln_pre.bias": "vision_model.pre_layrnorm.bias",
            "visual.ln_post.weight": "vision_model.post_layernorm.weight",
            "visual.ln_post.bias": "vision_model.post_layernorm.bias",
            "token_embedding.weight": "text_model.embeddings.token_embedding.weight",
            "ln_final.weight": "text_model.final_layer_norm.weight",
            "ln_final.bias": "text_model.final_layer_norm.bias",
            "logit_scale": "logit_scale",
        }
        if k in simple:
            out[simple[k]] = v
        elif k == "visual.positional_embedding":
            out["vision_model.embeddings.position_embedding.weight"] = v
        elif k == "positional_embedding":
            out["text_model.embeddings.position_embedding.weight"] = v
        elif k == "visual.proj":
            out["visual_projection.weight"] = v.t().contiguous()
        elif k == "text_projection":
            out["text_projection.weight"] = v.t().contiguous() if v.ndim == 2 else v
        elif k in ("attn_mask", "visual.attn_mask") or k.endswith("position_ids"):
            continue
        else:
            raise RewardError(f"unexpected OpenCLIP key {k} (only the standard ViT CLIP layout is supported)")
    if "logit_scale" in out and out["logit_scale"].ndim == 1:
        out["logit_scale"] = out["logit_scale"].reshape(())
    return out
