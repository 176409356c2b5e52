"""ImageReward (Xu et al. 2023): BLIP ViT + BERT text encoder with cross-attention to the image, an MLP on the
[CLS] feature, normalised as ``(r - 0.16717) / 1.03334``.

The public ``ImageReward.pt`` uses the BLIP repository's key names (``blip.visual_encoder.blocks.N.attn.qkv`` ...);
they are converted to transformers' ``BlipVisionModel`` / ``BlipTextModel`` names at load time, so neither the
``image-reward`` package nor timm is needed.
"""
from __future__ import annotations

import math
import re

import torch
from torch import nn

from . import _hf
from .base import Reward, RewardError, hi
from .clip_rewards import AestheticMLP
from .folders import layout_message, load_state_dict, parse_dtype, read_json, require_dir, require_files
from .preprocess import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, clip_pixels

IR_MEAN, IR_STD = 0.16717362830052426, 1.0333394966054072
MAX_TEXT_LEN = 35

_VISION_BLOCK = {"norm1": "layer_norm1", "norm2": "layer_norm2", "attn.qkv": "self_attn.qkv",
                 "attn.proj": "self_attn.projection", "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2"}


def convert_imagereward(sd: dict[str, torch.Tensor]):
    """BLIP-repo names -> (BlipVisionModel state dict, BlipTextModel state dict, MLP head state dict)."""
    vis, txt, mlp = {}, {}, {}
    blk = re.compile(r"^blocks\.(\d+)\.(.+)\.(weight|bias)$")
    for k, v in sd.items():
        if k.startswith("blip.visual_encoder."):
            r = k[len("blip.visual_encoder."):]
            m = blk.match(r)
            if m and m.group(2) in _VISION_BLOCK:
                vis[f"encoder.layers.{m.group(1)}.{_VISION_BLOCK[m.group(2)]}.{m.group(3)}"] = v
            elif r == "cls_token":
                vis["embeddings.class_embedding"] = v
            elif r == "pos_embed":
                vis["embeddings.position_embedding"] = v
            elif r.startswith("patch_embed.proj."):
                vis["embeddings.patch_embedding." + r.rsplit(".", 1)[1]] = v
            elif r.startswith("norm."):
                vis["post_layernorm." + r.rsplit(".", 1)[1]] = v
            else:
                raise RewardError(f"unexpected ImageReward vision key {k}")
        elif k.startswith("blip.text_encoder."):
            r = k[len("blip.text_encoder."):]
            if not r.startswith("pooler.") and not r.endswith("position_ids"):
                txt[r] = v
        elif k.startswith("mlp."):
            mlp[k[len("mlp."):]] = v
    if not vis or not txt or not mlp:
        raise RewardError("ImageReward.pt lacks blip.visual_encoder.*, blip.text_encoder.* or mlp.* weights")
    return vis, txt, mlp


def vision_config_from(vis: dict, tf) -> object:
    hidden = vis["embeddings.class_embedding"].shape[-1]
    patch = vis["embeddings.patch_embedding.weight"].shape[-1]
    n_pos = vis["embeddings.position_embedding"].shape[1]
    layers = 1 + max(int(k.split(".")[2]) for k in vis if k.startswith("encoder.layers."))
    side = int(round(math.sqrt(n_pos - 1)))
    return tf.BlipVisionConfig(hidden_size=hidden, intermediate_size=vis["encoder.layers.0.mlp.fc1.weight"].shape[0],
                               num_hidden_layers=layers, num_attention_heads=max(1, hidden // 64),
                               image_size=side * patch, patch_size=patch, layer_norm_eps=1e-6, hidden_act="gelu")


class ImageReward(Reward):
    name = "imagereward"
    differentiable = True
    needs_prompt = True
    score_range = (-2.0, 2.0)

    def __init__(self, vision, text, head, tokenizer, image_size: int = 224, batch_size: int = 8):
        super().__init__(batch_size)
        self.net = nn.ModuleDict({"vision": vision, "text": text, "head": head})
        self.tokenizer = tokenizer
        self.image_size = image_size
        self.input_size = int(image_size)  # shortest-edge resize + centre crop to image_size
        self.dtype = next(vision.parameters()).dtype
        self._tok_cache: dict = {}

    def _tokens(self, prompts):
        key = tuple(prompts)
        if key not in self._tok_cache:
            if len(self._tok_cache) > 64:
                self._tok_cache.clear()
            self._tok_cache[key] = self.tokenizer(list(prompts), padding="max_length", truncation=True,
                                                  max_length=MAX_TEXT_LEN, return_tensors="pt")
        return self._tok_cache[key]

    def pixels(self, x):
        return clip_pixels(x, self.image_size, None, OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, "bicubic")

    def _score(self, x, prompts, **kw):
        img = self.net["vision"](pixel_values=self.pixels(x).to(self.dtype)).last_hidden_state
        tok = self._tokens([str(p) for p in prompts])
        att = torch.ones(img.shape[:-1], dtype=torch.long, device=img.device)
        out = self.net["text"](input_ids=tok["input_ids"].to(img.device),
                               attention_mask=tok["attention_mask"].to(img.device),
                               encoder_hidden_states=img, encoder_attention_mask=att).last_hidden_state[:, 0]
        r = hi(self.net["head"](out)).squeeze(-1)
        return (r - IR_MEAN) / IR_STD


def load_imagereward(path, device="cpu", dtype="auto", batch_size=8) -> ImageReward:
    tf = _hf.transformers()
    device = torch.device(device)
    p = require_dir(path, "imagereward")
    ckpt = next((p / f for f in ("ImageReward.pt", "ImageReward.safetensors") if (p / f).exists()), None)
    if ckpt is None:
        raise RewardError(f"no ImageReward.pt in '{p}': {layout_message('imagereward', p)}")
    require_files(p, "imagereward", ("med_config.json",))
    tok_dir = p / "tokenizer" if (p / "tokenizer").is_dir() else p
    require_files(tok_dir, "imagereward", ("vocab.txt", "tokenizer.json"))
    tok = _hf.load_tokenizer(tok_dir, "imagereward")
    # ImageReward's BLIP tokenizer: bert-base-uncased + [DEC] (bos) + [ENC]
    tok.add_special_tokens({"bos_token": "[DEC]"})
    tok.add_special_tokens({"additional_special_tokens": ["[ENC]"]})
    med = read_json(p / "med_config.json")
    vis_sd, txt_sd, mlp_sd = convert_imagereward(load_state_dict(ckpt))
    vcfg = vision_config_from(vis_sd, tf)
    tcfg = tf.BlipTextConfig(
        vocab_size=med.get("vocab_size", 30524), hidden_size=med["hidden_size"],
        num_hidden_layers=med["num_hidden_layers"], num_attention_heads=med["num_attention_heads"],
        intermediate_size=med["intermediate_size"], max_position_embeddings=med.get("max_position_embeddings", 512),
        layer_norm_eps=med.get("layer_norm_eps", 1e-12), hidden_act=med.get("hidden_act", "gelu"),
        encoder_hidden_size=med.get("encoder_width", vcfg.hidden_size), pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id, sep_token_id=tok.sep_token_id)
    vision = tf.BlipVisionModel(vcfg)
    text = tf.BlipTextModel(tcfg, add_pooling_layer=False)
    for name, mod, sd in (("vision", vision, vis_sd), ("text", text, txt_sd)):
        missing, unexpected = mod.load_state_dict(sd, strict=False)
        missing = [k for k in missing if not k.endswith("position_ids")]
        if missing or unexpected:
            raise RewardError(f"ImageReward {name} weights in '{ckpt}' do not fit (missing {missing[:4]}, unexpected "
                              f"{unexpected[:4]}): {layout_message('imagereward', p)}")
    head = AestheticMLP.from_state_dict(mlp_sd)
    dt = parse_dtype(dtype, device)
    for m in (vision, text, head):
        m.to(dt).eval().requires_grad_(False)
    return ImageReward(vision, text, head, tok, vcfg.image_size, batch_size).to(device)
