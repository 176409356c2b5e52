"""Counting reward for quantity-aware generation: ``-RSS = -sum_c (C_c - C_c_target)^2`` (paper §5.3).

Pipeline (hard count, used for search / selection):

1. detector: Grounding DINO (``"name1. name2."``; box threshold 0.2, text threshold 0.2, a detection's phrase
   must equal a class name exactly) or OWLv2 (one text query per class);
2. per class keep detections with ``score > 0.6 * class max`` or ``score > 0.32``;
3. masks: SAM on the kept boxes (union of the 3 multimask outputs) when SAM weights are given, else the boxes;
4. intra-class de-duplication (ascending mask area; accept when > 50 % of the mask is new for that class) writing a
   shared per-pixel max-score map, then cross-class de-duplication (count a detection only if < 50 % of its pixels
   carry a higher score);
5. ``-RSS`` over the requested counts.

The hard count is a step function. ``soft=True`` (or ``reward.surrogate()``) gives the differentiable surrogate:
``soft_c = sum_queries sigmoid((p_qc - box_threshold) / temperature)``, reward ``-sum_c (soft_c - n_c)^2``.

The post-processing functions are pure torch and work on any detector output (see the tests' synthetic cases).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import _hf
from .base import Reward, RewardError, as_bchw, expand_prompts, hi
from .folders import parse_dtype, read_json, require_dir, require_model_folder
from .preprocess import dino_pixels, owlv2_pixels, sam_pixels
from .prompt_counts import targets_from_prompt

PAPER = dict(box_threshold=0.2, text_threshold=0.2, relative=0.6, absolute=0.32, overlap=0.5)


@dataclass
class Detections:
    """Detections of one image: boxes ``[N, 4]`` (x0, y0, x1, y1 in pixels), scores ``[N]``, labels ``[N]`` (class
    index)."""
    boxes: torch.Tensor
    scores: torch.Tensor
    labels: torch.Tensor

    def select(self, keep) -> "Detections":
        return Detections(self.boxes[keep], self.scores[keep], self.labels[keep])

    def __len__(self):
        return int(self.scores.numel())


# ------------------------------------------------------------------------------------------------ post-processing
MAX_COUNT = 99  # the largest count a target may ask for (prompt counts go to 99 too, rewards/prompt_counts.py)


def _count_value(c, source: str = "input 'counts'") -> int:
    """One requested count: a whole number 0..MAX_COUNT ('2', 2, '2.0'); a RewardError naming ``source`` (the input
    the count came from) otherwise."""
    try:
        v = float(c)
    except (TypeError, ValueError):
        v = float("nan")
    if not (math.isfinite(v) and v == int(v) and 0 <= v <= MAX_COUNT):
        raise RewardError(f"{source}: {c!r} is not a count; each count must be a whole number from 0 to "
                          f"{MAX_COUNT}, one per class name, e.g. '6, 7'")
    return int(v)


def parse_targets(classes, counts, source: str = "input 'counts'") -> tuple[list[str], list[int]]:
    """'airplanes, camels' + '6, 7' (or lists) -> (['airplanes', 'camels'], [6, 7])."""
    if isinstance(classes, str):
        classes = [c.strip() for c in classes.replace(";", ",").split(",")]
    classes = [str(c).strip().rstrip(".").strip() for c in classes if str(c).strip()]
    if isinstance(counts, str):
        counts = [c.strip() for c in counts.replace(";", ",").split(",") if c.strip()]
    counts = [_count_value(c, source) for c in counts]
    if not classes:
        raise RewardError("the counting reward needs at least one class name")
    if len(classes) != len(counts):
        raise RewardError(f"got {len(classes)} class names {classes} but {len(counts)} counts {counts}")
    if len(set(c.lower() for c in classes)) != len(classes):
        raise RewardError(f"class names must be distinct: {classes}")
    return classes, counts


def filter_relative(det: Detections, n_classes: int, relative: float = 0.6, absolute: float = 0.32) -> Detections:
    """Per class keep ``score > relative * class max`` or ``score > absolute``; drops unmatched (label < 0)."""
    keep = torch.zeros(len(det), dtype=torch.bool, device=det.scores.device)
    for c in range(n_classes):
        m = det.labels == c
        if m.any():
            top = det.scores[m].max()
            keep |= m & ((det.scores > relative * top) | (det.scores > absolute))
    return det.select(keep)


def box_masks(boxes: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Filled boxes as boolean masks ``[N, h, w]`` (pixel centres inside the box)."""
    ys = torch.arange(h, device=boxes.device, dtype=torch.float32).view(1, h, 1) + 0.5
    xs = torch.arange(w, device=boxes.device, dtype=torch.float32).view(1, 1, w) + 0.5
    b = boxes.float().view(-1, 4, 1, 1)
    return (xs >= b[:, 0]) & (xs <= b[:, 2]) & (ys >= b[:, 1]) & (ys <= b[:, 3])


def dedup_count(masks: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, n_classes: int,
                overlap: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Intra- then cross-class de-duplication (paper §5.3). Returns (counts ``[n_classes]``, counted ``[N]`` bool)."""
    n = len(scores)
    counted = torch.zeros(n, dtype=torch.bool)
    counts = torch.zeros(n_classes, dtype=torch.long)
    if n == 0:
        return counts, counted
    masks = masks.bool()
    areas = masks.flatten(1).sum(1)
    score_map = torch.full(masks.shape[1:], float("-inf"), device=masks.device)
    accepted = []
    for c in range(n_classes):
        idx = [i for i in torch.nonzero(labels == c).flatten().tolist() if areas[i] > 0]
        idx.sort(key=lambda i: (int(areas[i]), -float(scores[i])))
        covered = torch.zeros(masks.shape[1:], dtype=torch.bool, device=masks.device)
        for i in idx:
            new = (masks[i] & ~covered).sum()
            if new > overlap * areas[i]:
                accepted.append(i)
                covered |= masks[i]
                score_map = torch.where(masks[i], torch.maximum(score_map, scores[i].float()), score_map)
    for i in accepted:
        higher = (masks[i] & (score_map > scores[i].float())).sum()
        if higher < overlap * areas[i]:
            counted[i] = True
            counts[int(labels[i])] += 1
    return counts, counted


def rss(counts, targets) -> torch.Tensor:
    counts = torch.as_tensor(counts, dtype=torch.float32)
    targets = torch.as_tensor(targets, dtype=torch.float32, device=counts.device)
    return ((counts - targets) ** 2).sum(-1)


def soft_counts(p: torch.Tensor, threshold: float, temperature: float = 0.05) -> torch.Tensor:
    """``p``: per-query class probabilities ``[B, Q, C]`` -> soft counts ``[B, C]``."""
    return torch.sigmoid((p - threshold) / temperature).sum(1)


def phrase_token_spans(tokenizer, classes: list[str]) -> tuple[str, list[list[int]], list[str]]:
    """Grounding-DINO caption ``"name1. name2."``, the token positions of each name in it (with special tokens), and
    each name as the tokenizer decodes it (what an exact phrase match compares with)."""
    caption = "".join(f"{c.lower()}. " for c in classes).strip()
    enc = tokenizer(caption, return_offsets_mapping=True)
    offsets = enc["offset_mapping"]
    spans, pos = [], 0
    for c in classes:
        start = caption.index(c.lower(), pos)
        end = start + len(c)
        pos = end
        spans.append([i for i, (a, b) in enumerate(offsets) if b > a and a >= start and b <= end])
    decoded = [tokenizer.decode(tokenizer(c.lower(), add_special_tokens=False)["input_ids"]).strip() for c in classes]
    return caption, spans, decoded


def grounded_phrases(probs: torch.Tensor, input_ids: list[int], tokenizer, box_threshold: float,
                     text_threshold: float) -> tuple[torch.Tensor, list[str]]:
    """Grounding-DINO phrase extraction for one image, as transformers' post-processing does it.

    probs ``[Q, T]`` (sigmoid of the text logits). A query is kept if its max token probability exceeds
    ``box_threshold``; its phrase is the decoded text of the tokens whose probability exceeds ``text_threshold``
    (the first and the last logit positions excluded). Returns (kept query indices, phrases)."""
    keep = torch.nonzero(probs.max(-1).values > box_threshold).flatten()
    t_max = probs.shape[-1]
    phrases = []
    for q in keep.tolist():
        pos = [i for i in torch.nonzero(probs[q] > text_threshold).flatten().tolist()
               if 0 < i < t_max - 1 and i < len(input_ids)]
        phrases.append(tokenizer.decode([input_ids[i] for i in pos]))
    return keep, phrases


def grounded_detections(probs: torch.Tensor, boxes: torch.Tensor, input_ids: list[int], tokenizer,
                        class_phrases: list[str], box_threshold: float, text_threshold: float,
                        size_hw: tuple[int, int]) -> Detections:
    """Grounding-DINO detections for one image with exact phrase matching: a kept query is labelled with the class
    whose decoded name equals its phrase, else dropped. boxes ``[Q, 4]`` are (cx, cy, w, h) relative."""
    keep, phrases = grounded_phrases(probs, input_ids, tokenizer, box_threshold, text_threshold)
    lut = {p: i for i, p in enumerate(class_phrases)}
    labels = torch.tensor([lut.get(p.strip(), -1) for p in phrases], dtype=torch.long)
    keep = keep[labels >= 0]
    labels = labels[labels >= 0]
    h, w = size_hw
    cx, cy, bw, bh = boxes[keep].float().unbind(-1)
    xyxy = torch.stack([(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h], -1)
    return Detections(xyxy.reshape(-1, 4), probs[keep].max(-1).values.float(), labels)


def class_detections(probs: torch.Tensor, boxes_xyxy: torch.Tensor, threshold: float) -> Detections:
    """OWL-style post-processing for one image: probs ``[N, C]`` -> label = argmax class, kept above threshold."""
    scores, labels = probs.max(-1)
    keep = scores > threshold
    return Detections(boxes_xyxy[keep], scores[keep].float(), labels[keep])


# ------------------------------------------------------------------------------------------------ the reward
def _blank(v) -> bool:
    return not (v.strip() if isinstance(v, str) else v)


class CountingReward(Reward):
    """``-RSS`` of detected vs requested counts (hard), or the soft-count surrogate (``soft=True``).

    ``classes`` and ``counts`` both empty: the targets are read from each prompt at scoring time
    (rewards/prompt_counts.py: "six airplanes and seven camels")."""

    needs_counts = True
    needs_prompt = False
    score_range = (-10.0, 0.0)

    def __init__(self, detector: str, model, tokenizer, classes, counts, geometry: dict, sam=None,
                 sam_geometry: dict | None = None, box_threshold: float = 0.2, text_threshold: float = 0.2,
                 relative: float = 0.6, absolute: float = 0.32, overlap: float = 0.5, soft: bool = False,
                 temperature: float = 0.05, owl_template: str = "{}", batch_size: int = 4):
        super().__init__(batch_size)
        mods = {"detector": model}
        if sam is not None:
            mods["sam"] = sam
        self.net = nn.ModuleDict(mods)
        self.detector, self.tokenizer, self.geometry = detector, tokenizer, geometry
        self.sam_geometry = sam_geometry
        self.box_threshold, self.text_threshold = float(box_threshold), float(text_threshold)
        self.relative, self.absolute, self.overlap = float(relative), float(absolute), float(overlap)
        self.temperature, self.owl_template = float(temperature), owl_template
        self.soft = bool(soft)
        self.differentiable = self.soft
        self.dtype = next(model.parameters()).dtype
        self.from_prompt = _blank(classes) and _blank(counts)
        self.needs_prompt = self.from_prompt
        self._prompt_targets = None
        if self.from_prompt:
            self.classes, self.counts = [], []
        else:
            self._check_both_given(classes, counts)
            self.set_targets(classes, counts)
        self.last_details: list[dict] = []

    @property
    def name(self):
        base = f"count_{self.detector}" + ("_soft" if self.soft else "")
        return base

    def set_targets(self, classes, counts):
        source = "the prompt's counts" if self.from_prompt else "input 'counts'"
        classes, counts = parse_targets(classes, counts, source)
        if self.detector == "grounding_dino":
            self._check_caption_length(classes)
        self.classes, self.counts = classes, counts
        self._text = None
        if self.detector == "grounding_dino":
            self.caption, self.spans, self.phrases = phrase_token_spans(self.tokenizer, self.classes)
            empty = [c for c, s in zip(self.classes, self.spans) if not s]
            if empty:
                raise RewardError(f"class names {empty} produce no tokens")

    def _check_caption_length(self, classes):
        """Grounding DINO reads one caption 'name1. name2.' of at most ``max_text_len`` tokens (256 for the public
        models); a longer one would fail inside the detector, mid-search."""
        limit = int(self.geometry.get("max_text_len") or 256)
        caption = "".join(f"{c.lower()}. " for c in classes).strip()
        n = None if len(caption) > 16 * limit else len(self.tokenizer(caption)["input_ids"])
        if n is None or n > limit:
            size = f"{len(caption)} characters" if n is None else f"{n} tokens"
            where = "the prompt's counts" if self.from_prompt else "input 'class_names'"
            raise RewardError(f"counting reward: {where} give {len(classes)} class names, a detector caption of "
                              f"{size}; Grounding DINO reads at most {limit} tokens. Fix: count fewer kinds of "
                              "object (fewer or shorter class names)")

    @staticmethod
    def _check_both_given(classes, counts):
        if _blank(classes) or _blank(counts):
            empty = "class_names" if _blank(classes) else "counts"
            raise RewardError(f"counting reward: {empty} is empty. Fill in both class_names and counts (e.g. "
                              "'airplanes, camels' and '6, 7'), or leave both empty to read the counts from the "
                              "prompt")

    def use_prompt(self, prompt):
        """Read-from-prompt mode: make the prompt's targets the current ones (no-op when they already are)."""
        if self._prompt_targets != prompt:
            self.set_targets(*targets_from_prompt(prompt))
            self._prompt_targets = prompt

    def check_prompt(self, prompt):
        """Read-from-prompt mode: the prompt must hold counts that fit the detector (see :meth:`set_targets`)."""
        if self.from_prompt:
            self.use_prompt(prompt)

    def _prompt_groups(self, prompts):
        """Yield the image indices sharing one prompt, with that prompt's targets set (one group of all images when
        the targets are fixed)."""
        if not self.from_prompt:
            yield list(range(len(prompts)))
            return
        groups: dict = {}
        for i, p in enumerate(prompts):
            groups.setdefault(p, []).append(i)
        for p, idx in groups.items():
            self.use_prompt(p)
            yield idx

    def describe(self):
        d = super().describe()
        d.update(classes=self.classes, counts=self.counts, soft=self.soft, sam=("sam" in self.net),
                 targets_from_prompt=self.from_prompt)
        return d

    def surrogate(self):
        if self.soft:
            return self
        twin = object.__new__(type(self))
        twin.__dict__.update(self.__dict__)
        twin.soft, twin.differentiable = True, True
        return twin

    # -------------------------------------------------------------- detector forward
    def _text_inputs(self, n):
        if self._text is None:
            if self.detector == "grounding_dino":
                enc = self.tokenizer(self.caption, return_tensors="pt")
            else:
                queries = [self.owl_template.format(c) for c in self.classes]
                enc = self.tokenizer(queries, padding="max_length", truncation=True, return_tensors="pt",
                                     max_length=self.geometry.get("max_text_len", 16))
            self._text = {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        if self.detector == "grounding_dino":
            return {k: v.to(self._device).repeat(n, 1) for k, v in self._text.items()}
        return {k: v.to(self._device).repeat(n, 1) for k, v in self._text.items()}

    def forward_detector(self, x):
        """-> (per-query class probabilities [B, Q, C], boxes xyxy in pixels [B, Q, 4], raw outputs)."""
        n, _, h, w = x.shape
        g = self.geometry
        model = self.net["detector"]
        if self.detector == "grounding_dino":
            pv, mask = dino_pixels(x, g["shortest"], g["longest"], g["mean"], g["std"])
            out = model(pixel_values=pv.to(self.dtype), pixel_mask=mask, **self._text_inputs(n))
            probs = hi(out.logits).sigmoid()  # [B, Q, T]
            per_class = torch.stack([probs[..., s].amax(-1) for s in self.spans], -1)
            cx, cy, bw, bh = hi(out.pred_boxes).unbind(-1)
            boxes = torch.stack([(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h], -1)
            return per_class, boxes, (probs, out.pred_boxes)
        pv = owlv2_pixels(x, g["size"], g["mean"], g["std"])
        out = model(pixel_values=pv.to(self.dtype), **self._text_inputs(n))
        probs = hi(out.logits).sigmoid()  # [B, N, C]
        s = max(h, w)
        cx, cy, bw, bh = hi(out.pred_boxes).unbind(-1)
        boxes = torch.stack([(cx - bw / 2) * s, (cy - bh / 2) * s, (cx + bw / 2) * s, (cy + bh / 2) * s], -1)
        boxes = torch.minimum(boxes.clamp(min=0), torch.tensor([w, h, w, h], device=boxes.device, dtype=boxes.dtype))
        return probs, boxes, None

    def detections(self, x) -> list[Detections]:
        with torch.no_grad():
            per_class, boxes, raw = self.forward_detector(x)
        h, w = x.shape[-2:]
        out = []
        for b in range(x.shape[0]):
            if self.detector == "grounding_dino":
                probs, pred_boxes = raw
                ids = self._text["input_ids"][0].tolist()
                det = grounded_detections(probs[b].cpu(), pred_boxes[b].cpu(), ids, self.tokenizer, self.phrases,
                                          self.box_threshold, self.text_threshold, (h, w))
            else:
                det = class_detections(per_class[b].cpu(), boxes[b].cpu(), self.box_threshold)
            out.append(filter_relative(det, len(self.classes), self.relative, self.absolute))
        return out

    def masks_for(self, x1: torch.Tensor, det: Detections) -> torch.Tensor:
        h, w = x1.shape[-2:]
        if len(det) == 0:
            return torch.zeros(0, h, w, dtype=torch.bool)
        if "sam" not in self.net:
            return box_masks(det.boxes, h, w)
        g = self.sam_geometry
        with torch.no_grad():
            pv, (rh, rw) = sam_pixels(x1, g["longest"], g["pad"], g["mean"], g["std"])
            scale = g["longest"] / max(h, w)
            boxes = (det.boxes.float() * scale).unsqueeze(0).to(self._device)
            out = self.net["sam"](pixel_values=pv.to(self.dtype), input_boxes=boxes.to(self.dtype),
                                  multimask_output=True)
            m = out.pred_masks[0].float()  # [N, 3, lh, lw]
            m = F.interpolate(m, size=(g["pad"], g["pad"]), mode="bilinear", align_corners=False)
            m = F.interpolate(m[..., :rh, :rw], size=(h, w), mode="bilinear", align_corners=False)
            return (m > 0).any(1).cpu()

    def count(self, x: torch.Tensor) -> list[dict]:
        """Hard counts per image: ``[{"counts": {...}, "detections": n_kept, "rss": r}]``; ``x`` as in ``_score``."""
        res = []
        for b, det in enumerate(self.detections(x)):
            masks = self.masks_for(x[b:b + 1], det)
            counts, _ = dedup_count(masks, det.scores, det.labels, len(self.classes), self.overlap)
            res.append({"targets": dict(zip(self.classes, self.counts)),
                        "counts": dict(zip(self.classes, counts.tolist())), "detections": len(det),
                        "rss": float(rss(counts, self.counts))})
        return res

    def _score(self, x, prompts, classes=None, counts=None, **kw):
        if classes is not None or counts is not None:
            self.from_prompt = self.needs_prompt = False
            self.set_targets(classes if classes is not None else self.classes,
                             counts if counts is not None else self.counts)
        order, parts, details = [], [], []
        for idx in self._prompt_groups(prompts):
            parts.append(self._score_targets(_take(x, idx), details))
            order += idx
        out = torch.cat(parts)
        self.last_details = [details[j] for j in _inverse(order)] if details else []
        return out[torch.as_tensor(_inverse(order), device=out.device)]

    def _score_targets(self, x, details: list) -> torch.Tensor:
        """Scores under the current targets; hard counts are appended to ``details``."""
        if self.soft:
            per_class, _, _ = self.forward_detector(x)
            sc = soft_counts(per_class, self.box_threshold, self.temperature)
            target = torch.tensor(self.counts, dtype=sc.dtype, device=sc.device)
            return -((sc - target) ** 2).sum(-1)
        res = self.count(x)
        details += res
        return torch.tensor([0.0 - r["rss"] for r in res], dtype=torch.float32, device=x.device)

    def details(self, images, prompt=None) -> list[dict]:
        """Per image: the targets (and whether they come from the prompt), the hard counts, RSS and exact hit."""
        x = as_bchw(images)
        prompts = expand_prompts(prompt, x.shape[0])
        self._prepare()
        rows = []
        with torch.no_grad():
            for i in range(0, x.shape[0], self.batch_size):
                self.interrupt_point()
                rows += self._detail_rows(x[i:i + self.batch_size].to(self._device, torch.float32),
                                          prompts[i:i + self.batch_size])
        return rows

    def _detail_rows(self, x, prompts) -> list[dict]:
        rows, order = [], []
        for idx in self._prompt_groups(prompts):
            rows += self.count(_take(x, idx))
            order += idx
        rows = [rows[j] for j in _inverse(order)]
        for r in rows:
            r.update(parsed_from_prompt=self.from_prompt, exact=r["rss"] == 0)
        return rows


def _take(x: torch.Tensor, idx: list[int]) -> torch.Tensor:
    """``x[idx]`` without a copy when ``idx`` is every image (fixed targets, or one prompt for all)."""
    return x if len(idx) == x.shape[0] else x[idx]


def _inverse(order: list[int]) -> list[int]:
    """Positions that put values listed in ``order`` (a permutation of image indices) back in image order."""
    inv = [0] * len(order)
    for pos, i in enumerate(order):
        inv[i] = pos
    return inv


# ------------------------------------------------------------------------------------------------ loading
def _detector_kind(p: Path) -> str:
    mt = read_json(p / "config.json").get("model_type", "")
    if mt in ("grounding-dino", "grounding_dino", "mm-grounding-dino", "mm_grounding_dino"):
        return "grounding_dino"
    if mt in ("owlv2", "owlvit"):
        return "owlv2"
    raise RewardError(f"'{p}' holds a '{mt}' model; the counting reward needs Grounding DINO or OWLv2 "
                      f"(IDEA-Research/grounding-dino-base or google/owlv2-base-patch16-ensemble)")


SAM_TYPES = ("sam",)


def _require_sam(p: Path):
    """The counting loader's SAM folder must hold a SamModel (a detector or CLIP folder would load as random SAM
    weights, or fail mid-search)."""
    mt = read_json(p / "config.json").get("model_type", "")
    if mt not in SAM_TYPES:
        raise RewardError(f"input 'sam': '{p.name}' holds a '{mt or 'unknown'}' model, not SAM. Choose a transformers "
                          "SamModel folder (facebook/sam-vit-base) or 'none' to de-duplicate with the boxes")


def load_counting(path, classes="", counts="", device="cpu", dtype="auto", batch_size=4, sam_path=None,
                  box_threshold=None, text_threshold=None, soft=False, **kw) -> CountingReward:
    tf = _hf.transformers()
    device = torch.device(device)
    p = require_dir(path, "counting")
    kind = _detector_kind(require_model_folder(p, "counting"))
    require_model_folder(p, kind, (("preprocessor_config.json",), ("vocab.txt", "tokenizer.json", "vocab.json")))
    dt = parse_dtype(dtype, device)
    ip = _hf.load_image_processor(p, kind)
    g = _hf.ip_geometry(ip)
    tok = _hf.load_tokenizer(p, kind)
    if kind == "grounding_dino":
        cls = "MMGroundingDinoForObjectDetection" if "mm" in read_json(p / "config.json").get("model_type", "") \
            else "GroundingDinoForObjectDetection"
        model = _hf.load_model(cls, p, kind, dtype=dt)
        geometry = {"shortest": int(g["shortest_edge"] or 800), "longest": int(g["longest_edge"] or 1333),
                    "mean": g["mean"], "std": g["std"], "max_text_len": getattr(model.config, "max_text_len", 256)}
    else:
        model = _hf.load_model("Owlv2ForObjectDetection" if read_json(p / "config.json").get("model_type") == "owlv2"
                               else "OwlViTForObjectDetection", p, kind, dtype=dt)
        geometry = {"size": int(g["height"] or 960), "mean": g["mean"], "std": g["std"],
                    "max_text_len": model.config.text_config.max_position_embeddings}
    sam = sam_geo = None
    if sam_path:
        sp = require_model_folder(sam_path, "sam", (("preprocessor_config.json",),))
        _require_sam(sp)
        sam = _hf.load_model("SamModel", sp, "sam", dtype=dt)
        sip = _hf.load_image_processor(sp, "sam")
        sg = _hf.ip_geometry(sip)
        pad = getattr(sip, "pad_size", None)
        pad_h = pad.get("height") if isinstance(pad, dict) else getattr(pad, "height", None)
        sam_geo = {"longest": int(sg["longest_edge"] or 1024), "pad": int(pad_h or sg["longest_edge"] or 1024),
                   "mean": sg["mean"], "std": sg["std"]}
    del tf
    thr = dict(box_threshold=PAPER["box_threshold"] if box_threshold is None else box_threshold,
               text_threshold=PAPER["text_threshold"] if text_threshold is None else text_threshold)
    return CountingReward(kind, model, tok, classes, counts, geometry, sam, sam_geo, soft=soft,
                          batch_size=batch_size, **thr, **kw).to(device)
