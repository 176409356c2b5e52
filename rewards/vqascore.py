"""VQAScore (Lin et al. 2024): the probability that a VLM answers "Yes" to
``Does this figure show "{prompt}"? Please answer yes or no.``

Three backends, chosen from the folder's ``config.json``:

* ``clip_t5``: the official CLIP-FlanT5 checkpoints (zhiqiulin/clip-flant5-xl / -xxl, the paper's reward). LLaVA-1.5
  with a T5: CLIP ViT-L/14-336 features (layer -2, CLS dropped) -> ``mlp2x_gelu`` projector -> spliced into the T5
  *encoder* input at ``<image>``; image padded to a square with the mean colour. Re-implemented here from
  transformers parts (no t2v-metrics dependency). Score = ``exp(-mean CE)`` of the answer tokens (``▁Yes </s>``).
* ``blip2`` / ``instructblip`` with a Flan-T5 LM (transformers classes): same encoder-decoder score.
* any decoder-only ``AutoModelForImageTextToText`` VLM (Qwen2.5-VL, ...): softmax of the next-token logits at
  "Yes" after the chat template's assistant prefix.

All backends keep the graph from the image (torch preprocessing), except generic decoder-only VLMs whose processor
has no torch backend (then ``differentiable`` is False).

Text limits: the question template must hold exactly one ``{}`` (checked at load); the question with the prompt in it
may have at most ``min(512, the model's tokenizer / position limits)`` tokens (checked before scoring, see
``VQAScore.check_prompt``). Longer prompts are refused with the limit, never truncated.
"""
from __future__ import annotations

import importlib.util
import re
import string
from pathlib import Path

import torch
from torch import nn

from . import _hf
from .base import Reward, RewardError, hi, quoted
from .folders import (WEIGHT_NAMES, checkpoint_keys, layout_message, load_state_dict, parse_dtype, read_json,
                      require_dir, require_files)
from .preprocess import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, clip_pixels, fixed_pixels, pad_to_square, qwen_vl_pixels

QUESTION = 'Does this figure show "{}"? Please answer yes or no.'
BLIP_QUESTION = 'Question: Does this figure show "{}"? Please answer yes or no.'
SYSTEM_MSG = ("A chat between a curious user and an artificial intelligence assistant. "
              "The assistant gives helpful, detailed, and polite answers to the user's questions.")
T5_CHAT = SYSTEM_MSG + " USER: <image>\n{} ASSISTANT: "
MM_KEYS = ("mm_vision_tower", "mm_hidden_size", "mm_projector_type", "mm_vision_select_layer",
           "mm_vision_select_feature", "image_aspect_ratio", "use_mm_proj", "tune_mm_mlp_adapter",
           "pretrain_mm_mlp_adapter", "mm_use_im_start_end", "mm_use_im_patch_token", "freeze_mm_mlp_adapter",
           "image_grid_pinpoints", "mm_patch_merge_type", "tokenizer_padding_side", "tokenizer_model_max_length")
QWEN_VL_TYPES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")


def answer_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the answer tokens per row, [b]."""
    logp = torch.log_softmax(hi(logits), dim=-1)
    return -logp.gather(-1, labels.unsqueeze(-1)).squeeze(-1).mean(-1)


#: the longest prompt VQAScore reads, in tokens of the question text: what FLUX's T5 reads (512), or less where the
#: model's own tokenizer / position limit is lower. Longer prompts are refused (encoder memory grows with the square
#: of the length: a 120,000-character prompt grew a server to 22.7 GB), never silently truncated (a truncated
#: question asks something else).
MAX_PROMPT_TOKENS = 512
#: a prompt longer than this many characters per allowed token is refused before it is tokenized
MAX_CHARS_PER_TOKEN = 16
PROMPT_FIX = "shorten the prompt (the FlowSearch / Score Images 'prompt' input)"


def check_question(question: str) -> str:
    """A question template with exactly one empty ``{}`` field (literal braces as ``{{ }}``); a RewardError naming the
    input 'question' otherwise (``{} {oops}``, ``{} {0}``, ``{:x}`` would fail at scoring time, mid-search)."""
    fix = ("write it with exactly one {} where the prompt goes (no names, numbers or format specs; {{ }} for literal "
           "braces), e.g. 'Does this figure show \"{}\"? Please answer yes or no.'")
    try:
        fields = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(question) if name is not None]
    except ValueError as e:
        raise RewardError(f"input 'question': cannot read the template {quoted(question)} ({e}); {fix}") from None
    if fields != [("", "", None)]:
        shown = " ".join("{" + name + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "") + "}"
                         for name, spec, conv in fields)
        raise RewardError(f"input 'question': the template {quoted(question)} has {len(fields)} field(s) "
                          f"{quoted(shown)}; {fix}")
    return question


def token_limit(*limits) -> int:
    """The smallest plausible limit among a model's tokenizers/positions (huge 'no limit' sentinels ignored), capped
    at MAX_PROMPT_TOKENS."""
    real = [int(v) for v in limits if isinstance(v, (int, float)) and 0 < v < 1_000_000]
    return min([MAX_PROMPT_TOKENS, *real])


class VQAScore(Reward):
    """Base: groups rows by prompt (one forward per distinct prompt in a minibatch)."""

    name = "vqascore"
    differentiable = True
    needs_prompt = True
    score_range = (0.0, 1.0)

    def __init__(self, question: str = QUESTION, answer: str = "Yes", batch_size: int = 4):
        super().__init__(batch_size)
        self.question, self.answer = check_question(question), answer
        self._checked: set = set()

    # -------------------------------------------------------------- prompt length
    def max_prompt_tokens(self) -> int:
        """Token limit of the question text (with the prompt in it); backends lower it to their model's limits."""
        return token_limit(getattr(self.text_tokenizer(), "model_max_length", None))

    def text_tokenizer(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def check_prompt(self, prompt) -> None:
        """Refuse a prompt whose question is longer than :meth:`max_prompt_tokens` (RewardError naming the prompt
        and the fix); very long texts are refused before tokenizing."""
        super().check_prompt(prompt)
        prompt = str(prompt)
        if prompt in self._checked:
            return
        limit = self.max_prompt_tokens()
        if not self._checked and not self._fits(self.question.format(""), limit)[0]:
            raise RewardError(f"input 'question': the template alone is longer than the {limit} tokens this model "
                              "reads; write a short question with {} where the prompt goes")
        fits, n = self._fits(self.question.format(prompt), limit)
        if not fits:
            size = f"{len(prompt)} characters" if n is None else f"{n} tokens with the question"
            raise RewardError(f"{self.name}: the prompt is too long ({size}); this model reads at most {limit} "
                              f"tokens of question text. Fix: {PROMPT_FIX} to at most {limit} tokens (about "
                              f"{limit * 3 // 4} words).")
        if len(self._checked) > 256:
            self._checked.clear()
        self._checked.add(prompt)

    def _fits(self, text: str, limit: int) -> tuple[bool, int | None]:
        """(fits in ``limit`` tokens, token count); a text far too long to fit is not tokenized (count None)."""
        if len(text) > MAX_CHARS_PER_TOKEN * limit:
            return False, None
        n = len(self.text_tokenizer()(text, add_special_tokens=False)["input_ids"])
        return n <= limit, n

    def _score(self, x, prompts, **kw):
        for p in dict.fromkeys(prompts):
            self.check_prompt(p)
        out = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)
        parts = []
        for p in dict.fromkeys(prompts):
            idx = [i for i, q in enumerate(prompts) if q == p]
            parts.append((idx, self._score_prompt(x[idx], str(p))))
        if x.requires_grad:  # index_put keeps the graph too, but stacking is simpler to reason about
            order = torch.tensor([i for idx, _ in parts for i in idx], device=x.device)
            vals = torch.cat([v for _, v in parts])
            return vals[torch.argsort(order)]
        for idx, v in parts:
            out[idx] = v.to(out.dtype)
        return out

    def _score_prompt(self, x, prompt: str) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


# ------------------------------------------------------------------------------------------------ CLIP-FlanT5
def build_projector(kind: str, d_in: int, d_out: int) -> nn.Module:
    if kind == "linear":
        return nn.Linear(d_in, d_out)
    m = re.match(r"^mlp(\d+)x_gelu$", kind)
    if m:
        layers: list[nn.Module] = [nn.Linear(d_in, d_out)]
        for _ in range(1, int(m.group(1))):
            layers += [nn.GELU(), nn.Linear(d_out, d_out)]
        return nn.Sequential(*layers)
    if kind == "identity":
        return nn.Identity()
    raise RewardError(f"unsupported mm_projector_type '{kind}'")


class ClipT5VQAScore(VQAScore):
    name = "vqascore_clip_flant5"

    def __init__(self, vision, projector, t5, tokenizer, geometry: dict, select_layer: int = -2,
                 select_feature: str = "patch", pad_square: bool = True, **kw):
        super().__init__(**kw)
        self.net = nn.ModuleDict({"vision": vision, "projector": projector, "t5": t5})
        self.tokenizer = tokenizer
        self.geometry = geometry
        self.input_size = int(geometry["size"])  # (padded to a square, then) resized to size × size
        self.select_layer, self.select_feature, self.pad_square = select_layer, select_feature, pad_square
        self.dtype = next(t5.parameters()).dtype
        self._ids: dict = {}

    def text_tokenizer(self):
        return self.tokenizer

    def pixels(self, x):
        g = self.geometry
        if self.pad_square:  # LLaVA expand2square fills with int(mean * 255)
            x = pad_to_square(x, [int(m * 255) / 255.0 for m in g["mean"]])
        return clip_pixels(x, g["size"], (g["size"], g["size"]), g["mean"], g["std"], "bicubic")

    def image_features(self, x):
        out = self.net["vision"](pixel_values=self.pixels(x).to(self.dtype), output_hidden_states=True)
        f = out.hidden_states[self.select_layer]
        if self.select_feature == "patch":
            f = f[:, 1:]
        return self.net["projector"](f)

    def _text_ids(self, prompt):
        if prompt not in self._ids:
            q = T5_CHAT.format(self.question.format(prompt))
            before, after = q.split("<image>")
            if len(self._ids) > 256:
                self._ids.clear()
            self._ids[prompt] = (self.tokenizer(before).input_ids, self.tokenizer(after).input_ids,
                                 self.tokenizer(self.answer).input_ids)
        return self._ids[prompt]

    def _score_prompt(self, x, prompt):
        a, b, ans = self._text_ids(prompt)
        dev = self._device
        t5 = self.net["t5"]
        emb = t5.get_input_embeddings()
        img = self.image_features(x)
        n = x.shape[0]
        ea = emb(torch.tensor(a, device=dev)).unsqueeze(0).expand(n, -1, -1)
        eb = emb(torch.tensor(b, device=dev)).unsqueeze(0).expand(n, -1, -1)
        embeds = torch.cat([ea, img.to(ea.dtype), eb], 1)
        labels = torch.tensor(ans, device=dev).unsqueeze(0).repeat(n, 1)
        logits = t5(inputs_embeds=embeds, attention_mask=torch.ones(embeds.shape[:2], dtype=torch.long, device=dev),
                    labels=labels).logits
        return (-answer_nll(logits, labels)).exp()


_LM_CLASS = {}


def _clip_t5_lm_class(tf):
    """T5ForConditionalGeneration that quietly skips the checkpoint's vision_tower.* / mm_projector.* keys (loaded
    separately below)."""
    if "cls" not in _LM_CLASS:
        _LM_CLASS["cls"] = type("ClipT5LanguageModel", (tf.T5ForConditionalGeneration,), {
            "_keys_to_ignore_on_load_unexpected": [r"vision_tower\..*", r"mm_projector\..*",
                                                   r"model\.mm_projector\..*"]})
    return _LM_CLASS["cls"]


def fit_prefix(sd: dict, module: nn.Module, prefix: str) -> dict:
    """Add or strip ``prefix`` so the keys match ``module`` (transformers 5.x flattened ``CLIPVisionModel``: no
    ``vision_model.`` level; 4.x and the checkpoints have it)."""
    want = next(iter(module.state_dict()), "").startswith(prefix)
    have = next(iter(sd), "").startswith(prefix)
    if want and not have:
        return {prefix + k: v for k, v in sd.items()}
    if have and not want:
        return {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in sd.items()}
    return sd


def _clip_vision_config_from(sd: dict, tf):
    sd = {k[len("vision_model."):] if k.startswith("vision_model.") else k: v for k, v in sd.items()}
    hidden = sd["embeddings.class_embedding"].shape[-1]
    patch = sd["embeddings.patch_embedding.weight"].shape[-1]
    n_pos = sd["embeddings.position_embedding.weight"].shape[0]
    layers = 1 + max(int(k.split(".")[2]) for k in sd if k.startswith("encoder.layers."))
    side = int(round((n_pos - 1) ** 0.5))
    return tf.CLIPVisionConfig(hidden_size=hidden, intermediate_size=sd["encoder.layers.0.mlp.fc1.weight"].shape[0],
                               num_hidden_layers=layers, num_attention_heads=max(1, hidden // 64),
                               image_size=side * patch, patch_size=patch, hidden_act="quick_gelu")


def load_clip_t5(p: Path, device, dtype, batch_size, question=None, answer=None) -> ClipT5VQAScore:
    tf = _hf.transformers()
    cfg = read_json(p / "config.json")
    t5_keys = {k: v for k, v in cfg.items() if k not in MM_KEYS and k not in ("model_type", "architectures",
                                                                            "transformers_version", "auto_map")}
    t5cfg = tf.T5Config(**t5_keys)
    t5 = _hf.load_model(_clip_t5_lm_class(tf), p, "clip_t5", dtype=dtype, config=t5cfg)
    # vision tower: a vision_tower/ folder with weights, else the checkpoint's vision_tower.vision_tower.* keys
    vt = p / "vision_tower"
    has_vt_weights = vt.is_dir() and any((vt / f).exists() for f in WEIGHT_NAMES)
    if has_vt_weights:
        vision = _hf.load_model("CLIPVisionModel", vt, "clip_t5", dtype=dtype)
    else:
        pre = "vision_tower.vision_tower."
        sd = {k[len(pre):]: v for k, v in checkpoint_keys(p, (pre,)).items()}
        if not sd:
            raise RewardError(f"no vision tower: '{p}' has neither vision_tower.* weights nor a vision_tower/ folder "
                              f"with weights: {layout_message('clip_t5', p)}")
        vcfg = (_hf.local(tf.CLIPVisionConfig.from_pretrained, vt, "clip_t5") if (vt / "config.json").exists()
                else _clip_vision_config_from(sd, tf))
        vision = tf.CLIPVisionModel(vcfg)
        missing, _ = vision.load_state_dict(fit_prefix(sd, vision, "vision_model."), strict=False)
        missing = [k for k in missing if not k.endswith("position_ids")]
        if missing:
            raise RewardError(f"vision tower weights in '{p}' do not fit: missing {missing[:4]}")
        vision = vision.to(dtype).eval().requires_grad_(False)
    # projector
    proj_sd = {k.split("mm_projector.", 1)[1]: v for k, v in checkpoint_keys(p, ("mm_projector.", "model.mm_projector."))
               .items()}
    if not proj_sd:
        f = next((p / n for n in ("mm_projector.safetensors", "mm_projector.bin") if (p / n).exists()), None)
        if f is not None:
            proj_sd = {k.split("mm_projector.", 1)[-1]: v for k, v in load_state_dict(f).items()}
    if not proj_sd:
        raise RewardError(f"no mm_projector.* weights in '{p}': {layout_message('clip_t5', p)}")
    projector = build_projector(cfg.get("mm_projector_type", "mlp2x_gelu"), vision.config.hidden_size,
                                t5cfg.d_model)
    projector.load_state_dict(proj_sd)
    projector = projector.to(dtype).eval().requires_grad_(False)
    # image geometry (vision_tower/preprocessor_config.json when present, else CLIP's defaults at the tower size)
    size = vision.config.image_size
    geometry = {"size": size, "mean": OPENAI_CLIP_MEAN, "std": OPENAI_CLIP_STD}
    if (vt / "preprocessor_config.json").exists():
        g = _hf.ip_geometry(_hf.load_image_processor(vt, "clip_t5", "CLIPImageProcessor"))
        geometry = {"size": int(g["shortest_edge"] or size), "mean": g["mean"], "std": g["std"]}
    tok_dir = p / "tokenizer" if (p / "tokenizer").is_dir() else p
    require_files(tok_dir, "clip_t5", ("tokenizer.json", "spiece.model"))
    tok = _hf.load_tokenizer(tok_dir, "clip_t5")
    return ClipT5VQAScore(vision, projector, t5, tok, geometry, cfg.get("mm_vision_select_layer", -2),
                          cfg.get("mm_vision_select_feature", "patch"), cfg.get("image_aspect_ratio", "pad") == "pad",
                          question=question or QUESTION, answer=answer or "Yes", batch_size=batch_size).to(device)


# ------------------------------------------------------------------------------------------------ BLIP-2 / InstructBLIP
class Blip2VQAScore(VQAScore):
    name = "vqascore_blip2"

    def __init__(self, model, processor, **kw):
        super().__init__(**kw)
        self.net = nn.ModuleDict({"model": model})
        self.processor = processor
        g = _hf.ip_geometry(processor.image_processor)
        self.size = (int(g["height"] or 224), int(g["width"] or 224))
        self.input_size = max(self.size)  # resized to a fixed height × width
        self.mean, self.std, self.mode = g["mean"], g["std"], g["mode"]
        self.dtype = next(model.parameters()).dtype
        self._text: dict = {}
        self._dummy = None

    def text_tokenizer(self):
        return self.processor.tokenizer

    def max_prompt_tokens(self):
        """The T5 tokenizer's limit; InstructBLIP also feeds the question to its Q-Former (BERT positions)."""
        qtok = getattr(self.processor, "qformer_tokenizer", None)
        qcfg = getattr(self.net["model"].config, "qformer_config", None)
        qpos = getattr(qcfg, "max_position_embeddings", None) if qtok is not None else None
        return token_limit(getattr(self.processor.tokenizer, "model_max_length", None),
                           getattr(qtok, "model_max_length", None), qpos)

    def pixels(self, x):
        return fixed_pixels(x, *self.size, self.mean, self.std, self.mode)

    def _text_inputs(self, prompt):
        if prompt not in self._text:
            from PIL import Image

            enc = self.processor(images=Image.new("RGB", (8, 8)), text=self.question.format(prompt),
                                 return_tensors="pt")
            enc = {k: v for k, v in enc.items() if k != "pixel_values"}
            enc["labels"] = self.processor.tokenizer(self.answer, return_tensors="pt").input_ids
            if len(self._text) > 256:
                self._text.clear()
            self._text[prompt] = enc
        return self._text[prompt]

    def _score_prompt(self, x, prompt):
        n = x.shape[0]
        enc = {k: v.to(self._device).repeat(n, *([1] * (v.ndim - 1))) for k, v in self._text_inputs(prompt).items()}
        labels = enc.pop("labels")
        logits = self.net["model"](pixel_values=self.pixels(x).to(self.dtype), labels=labels, **enc).logits
        return (-answer_nll(logits[:, -labels.shape[1]:], labels)).exp()


def load_blip2(p: Path, device, dtype, batch_size, model_type, question=None, answer=None) -> Blip2VQAScore:
    cls = "InstructBlipForConditionalGeneration" if model_type == "instructblip" else "Blip2ForConditionalGeneration"
    model = _hf.load_model(cls, p, "blip2", dtype=dtype)
    lm = getattr(model.config, "text_config", None)
    if lm is not None and not getattr(lm, "is_encoder_decoder", False):
        raise RewardError(f"'{p}' has a decoder-only language model ({lm.model_type}); this scorer supports the "
                          f"Flan-T5 variants (blip2-flan-t5-*, instructblip-flan-t5-*)")
    require_files(p, "blip2", ("preprocessor_config.json",), ("tokenizer.json", "spiece.model"))
    proc = _hf.local(_hf.tf_class("AutoProcessor").from_pretrained, p, "blip2")
    # t2v-metrics' InstructBLIP template answers "yes" (lower case), unlike CLIP-FlanT5's "Yes"
    return Blip2VQAScore(model, proc, question=question or BLIP_QUESTION, answer=answer or "yes",
                         batch_size=batch_size).to(device)


# ------------------------------------------------------------------------------------------------ decoder-only VLMs
class LiteQwenVLProcessor:
    """The image half of Qwen2-VL's processor (image processor + tokenizer + ``<|image_pad|>`` expansion), for
    installs where the full processor cannot be built (transformers' video processors need torchvision)."""

    image_token = "<|image_pad|>"

    def __init__(self, image_processor, tokenizer, chat_template=None):
        self.image_processor, self.tokenizer = image_processor, tokenizer
        if chat_template and not getattr(tokenizer, "chat_template", None):
            tokenizer.chat_template = chat_template

    def apply_chat_template(self, messages, **kw):
        return self.tokenizer.apply_chat_template(messages, **kw)

    def __call__(self, images=None, text=None, return_tensors="pt", **kw):
        img = self.image_processor(images=images, return_tensors=return_tensors)
        merge = getattr(self.image_processor, "merge_size", 2)
        texts = [text] if isinstance(text, str) else list(text)
        grids = img["image_grid_thw"]
        out, k = [], 0
        for t in texts:
            while self.image_token in t:
                n = int(grids[k].prod()) // merge ** 2
                t = t.replace(self.image_token, "<|placeholder|>" * n, 1)
                k += 1
            out.append(t.replace("<|placeholder|>", self.image_token))
        enc = self.tokenizer(out, return_tensors=return_tensors, padding=True)
        return {**enc, **img}


def _load_vlm_processor(p: Path, model_type: str):
    tf = _hf.transformers()
    kw = {}
    if int(tf.__version__.split(".")[0]) < 5 and importlib.util.find_spec("torchvision") is not None:
        kw["use_fast"] = True  # 4.x: the torchvision ("Fast") image processors keep the autograd graph
    try:
        return _hf.local(tf.AutoProcessor.from_pretrained, p, "vlm", **kw), False
    except RewardError:
        if model_type not in QWEN_VL_TYPES:
            raise
    tpl = None
    if (p / "chat_template.jinja").exists():
        tpl = (p / "chat_template.jinja").read_text()
    elif (p / "chat_template.json").exists():
        tpl = read_json(p / "chat_template.json").get("chat_template")
    ip = _hf.local(tf.Qwen2VLImageProcessor.from_pretrained, p, "vlm")
    return LiteQwenVLProcessor(ip, _hf.load_tokenizer(p, "vlm"), tpl), True


class VLMVQAScore(VQAScore):
    name = "vqascore_vlm"

    def __init__(self, model, processor, model_type: str, **kw):
        super().__init__(**kw)
        self.net = nn.ModuleDict({"model": model})
        self.processor = processor
        self.model_type = model_type
        self.dtype = next(model.parameters()).dtype
        ip = processor.image_processor
        self.qwen = model_type in QWEN_VL_TYPES
        torch_backend = not type(ip).__name__.endswith("Pil") and (
            type(ip).__name__.endswith("Fast") or int(_hf.transformers().__version__.split(".")[0]) >= 5)
        self.differentiable = self.qwen or torch_backend
        ids = processor.tokenizer.encode(self.answer, add_special_tokens=False)
        if not ids:
            raise RewardError(f"the tokenizer cannot encode the answer '{self.answer}'")
        self.answer_id = ids[0]
        self._cache: dict = {}

    def text_tokenizer(self):
        return self.processor.tokenizer

    def max_prompt_tokens(self):
        """The tokenizer's limit and the language model's positions (the image and chat tokens share them)."""
        cfg = self.net["model"].config
        text_cfg = getattr(cfg, "text_config", None) or cfg
        return token_limit(getattr(self.processor.tokenizer, "model_max_length", None),
                           getattr(text_cfg, "max_position_embeddings", None))

    def _chat(self, prompt):
        msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": self.question.format(prompt)}]}]
        return self.processor.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)

    def qwen_geometry(self):
        ip = self.processor.image_processor
        size = getattr(ip, "size", None) or {}
        get = (lambda k: size.get(k)) if isinstance(size, dict) else (lambda k: getattr(size, k, None))
        return dict(patch=ip.patch_size, merge=ip.merge_size, temporal=ip.temporal_patch_size,
                    min_pixels=getattr(ip, "min_pixels", None) or get("shortest_edge") or 56 * 56,
                    max_pixels=getattr(ip, "max_pixels", None) or get("longest_edge") or 28 * 28 * 1280,
                    mean=tuple(ip.image_mean), std=tuple(ip.image_std))

    def _score_prompt(self, x, prompt):
        n, _, h, w = x.shape
        model = self.net["model"]
        if self.qwen:
            key = (prompt, h, w)
            if key not in self._cache:
                import numpy as np

                enc = self.processor(images=[np.zeros((h, w, 3), dtype=np.uint8)], text=[self._chat(prompt)],
                                     return_tensors="pt")
                if len(self._cache) > 64:
                    self._cache.clear()
                self._cache[key] = {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask")}
            enc = {k: v.to(self._device).repeat(n, 1) for k, v in self._cache[key].items()}
            pv, thw = qwen_vl_pixels(x, **self.qwen_geometry())
            logits = model(pixel_values=pv.to(self.dtype), image_grid_thw=thw, **enc).logits
        else:
            text = self._chat(prompt)
            imgs = [xi for xi in x] if self.differentiable else [
                (xi.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy() for xi in x]
            kw = {"do_rescale": False} if self.differentiable else {}
            enc = self.processor(images=imgs, text=[text] * n, return_tensors="pt", **kw)
            enc = {k: (v.to(self._device, self.dtype) if v.is_floating_point() else v.to(self._device))
                   for k, v in enc.items() if torch.is_tensor(v)}
            logits = model(**enc).logits
        # rows of one prompt have equal lengths (same text, same image size), so the last position is the answer's
        return torch.softmax(hi(logits[:, -1]), -1)[:, self.answer_id]


def load_vlm(p: Path, device, dtype, batch_size, model_type, question=None, answer=None) -> VLMVQAScore:
    model = _hf.load_model("AutoModelForImageTextToText", p, "vlm", dtype=dtype)
    if getattr(model.config, "is_encoder_decoder", False):
        raise RewardError(f"'{p}' is an encoder-decoder model ({model_type}); not supported by the decoder-only path")
    proc, _lite = _load_vlm_processor(p, model_type)
    if getattr(proc, "tokenizer", None) is not None:
        proc.tokenizer.padding_side = "left"
    return VLMVQAScore(model, proc, model_type, question=question or QUESTION, answer=answer or "Yes",
                       batch_size=batch_size).to(device)


# ------------------------------------------------------------------------------------------------ entry point
def detect_backend(p: Path) -> str:
    cfg = read_json(p / "config.json")
    mt = cfg.get("model_type", "")
    if mt == "clip_t5" or "mm_projector_type" in cfg or any("CLIPT5" in a for a in cfg.get("architectures", [])):
        return "clip_t5"
    if mt in ("blip-2", "blip_2"):
        return "blip2"
    if mt == "instructblip":
        return "instructblip"
    return "vlm"


def load_vqascore(path, device="cpu", dtype="auto", batch_size=4, backend: str = "auto", question: str | None = None,
                  answer: str | None = None, lite_processor: bool = False) -> VQAScore:
    device = torch.device(device)
    kind = {"clip_t5": "clip_t5", "blip2": "blip2", "instructblip": "blip2", "vlm": "vlm"}.get(backend, "vqascore")
    p = require_dir(path, kind)
    require_files(p, kind, ("config.json",))
    if backend == "auto":
        backend = detect_backend(p)
    kind = {"clip_t5": "clip_t5", "blip2": "blip2", "instructblip": "blip2"}.get(backend, "vlm")
    require_files(p, kind, WEIGHT_NAMES)
    # T5 overflows in fp16: keep encoder-decoder models in bf16/fp32
    dt = parse_dtype(dtype, device, allow_fp16=backend == "vlm")
    if backend == "clip_t5":
        return load_clip_t5(p, device, dt, batch_size, question, answer)
    if backend in ("blip2", "instructblip"):
        return load_blip2(p, device, dt, batch_size, backend, question, answer)
    mt = read_json(p / "config.json").get("model_type", "")
    r = load_vlm(p, device, dt, batch_size, mt, question, answer)
    if lite_processor and mt in QWEN_VL_TYPES:
        r.processor = LiteQwenVLProcessor(r.processor.image_processor, r.processor.tokenizer,
                                          getattr(r.processor, "chat_template", None))
    return r
