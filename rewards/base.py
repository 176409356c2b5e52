"""The one interface every reward implements, plus composition.

A reward scores a batch of ComfyUI IMAGEs (float ``[B, H, W, 3]`` in ``[0, 1]``) and returns a float32 tensor
``[B]`` on the images' device (float64 when the images are float64, which gradient checks use). Higher is better
for every reward (the counting reward returns ``-RSS``).

    r = rewards.load_reward("clip_score", "/path/to/models/rewards/clip-vit-large-patch14")
    scores = r(images, "a photo of a cat")          # no_grad unless images.requires_grad
    scores.sum().backward()                        # when r.differentiable and images.requires_grad

Heavy torch modules live in one ``torch.nn.Module`` container (``reward.net``) so that a host (ComfyUI's model
management, see ``comfy_glue.py``) can move, count and evict them; ``reward.before_use`` is the hook the host sets
to get its load call run before every scoring call, ``reward.check_interrupt`` the one it sets to stop scoring
between minibatches (ComfyUI's Cancel).
"""
from __future__ import annotations

import math
from typing import Callable, Iterable

import torch

class RewardError(ValueError, RuntimeError):
    """A reward could not be loaded or used (missing folder, bad layout, bad input). A ValueError (bad input, the
    house rule); also a RuntimeError, as it was before, for callers that catch that."""


class Reward:
    """Base class. Subclasses implement ``_score(x, prompts) -> [b]`` on a minibatch.

    ``x`` is ``[b, 3, H, W]`` float32 in [0, 1] on ``self.device``; ``prompts`` a list of ``b`` strings (or
    Nones). ``_score`` must keep the autograd graph from ``x`` when ``self.differentiable``.
    """

    name: str = "reward"
    differentiable: bool = False
    needs_prompt: bool = False
    needs_counts: bool = False
    #: nominal range of raw scores, used by ``CompositeReward(normalize="range")``
    score_range: tuple[float, float] = (0.0, 1.0)
    #: pixels the reward's processor resizes the image's shorter side to (it looks at no finer detail), so a
    #: search may decode the reward's copy of a candidate at that size; None = size-sensitive (JPEG, counts, pixel
    #: statistics, unknown): decode at full size
    input_size: int | None = None

    def __init__(self, batch_size: int = 8):
        self.batch_size = max(1, int(batch_size))
        self.net: torch.nn.Module | None = None  # heavy modules (None for weight-free rewards)
        self.dtype: torch.dtype = torch.float32
        self._device = torch.device("cpu")
        self.before_use: Callable[[], None] | None = None  # host hook (ComfyUI: load_models_gpu)
        self.load_device: torch.device | None = None  # where the host wants the modules while scoring
        #: host hook run before every minibatch (ComfyUI: Cancel check, raises to stop scoring); None standalone
        self.check_interrupt: Callable[[], None] | None = None

    # ---------------------------------------------------------------- device / memory
    @property
    def device(self) -> torch.device:
        return self._device

    def to(self, device=None, dtype: torch.dtype | None = None) -> "Reward":
        """Move the reward's modules (standalone use). Under ComfyUI the host moves them instead."""
        if device is not None:
            self._device = torch.device(device)
        if dtype is not None:
            self.dtype = dtype
        if self.net is not None:
            self.net.to(device=self._device, dtype=self.dtype)
        return self

    def modules(self) -> list[torch.nn.Module]:
        return [self.net] if self.net is not None else []

    def leaves(self) -> list["Reward"]:
        """The rewards that own modules (a composite returns its parts)."""
        return [self]

    def surrogate(self) -> "Reward | None":
        """A differentiable stand-in for gradient guidance: ``self`` if differentiable, else ``None`` (overridden
        by the counting reward, whose surrogate is the soft count)."""
        return self if self.differentiable else None

    def describe(self) -> dict:
        return {"name": self.name, "differentiable": self.differentiable, "needs_prompt": self.needs_prompt,
                "needs_counts": self.needs_counts}

    def __repr__(self):
        return f"<{type(self).__name__} {self.name} on {self.device}>"

    def _prepare(self):
        if self.before_use is not None:
            self.before_use()
        if self.net is not None:
            # the host may have moved or partially offloaded the container; compute where the weights are
            p = next(self.net.parameters(), None)
            if p is not None:
                if any(q.device != p.device for q in self.net.parameters()):
                    # a partial offload cannot run plain torch modules: load all of it
                    self.net.to(self.load_device or p.device)
                    p = next(self.net.parameters())
                self._device = p.device
                if p.is_floating_point():
                    self.dtype = p.dtype

    # ---------------------------------------------------------------- scoring
    def __call__(self, images: torch.Tensor, prompt=None, **kw) -> torch.Tensor:
        x = as_bchw(images)
        b = x.shape[0]
        prompts = expand_prompts(prompt, b)
        if self.needs_prompt and any(p is None or not str(p).strip() for p in prompts):
            raise RewardError(f"reward '{self.name}' needs a text prompt: connect the same text as your "
                              "CLIPTextEncode to the prompt input")
        self._prepare()
        grad = self.differentiable and torch.is_grad_enabled() and x.requires_grad
        work = torch.float64 if x.dtype == torch.float64 else torch.float32  # float64 only for gradient checks
        out = []
        with torch.set_grad_enabled(grad):
            for i in range(0, b, self.batch_size):
                self.interrupt_point()
                xb = x[i:i + self.batch_size].to(self._device, work)
                out.append(self._score(xb, prompts[i:i + self.batch_size], **kw).to(work).reshape(-1))
        return torch.cat(out).to(images.device)

    def check_prompt(self, prompt) -> None:
        """Raise a RewardError now if scoring with ``prompt`` would refuse it (missing, too long, no counts in it,
        ...), so a host can check before spending a search budget. Here: a prompt-based reward needs one."""
        if self.needs_prompt and (prompt is None or not str(prompt).strip()):
            raise RewardError(f"reward '{self.name}' needs a text prompt: connect the same text as your "
                              "CLIPTextEncode to the prompt input")

    def interrupt_point(self):
        """Where scoring may stop: before each minibatch (the host's Cancel check, see ``check_interrupt``)."""
        check = getattr(self, "check_interrupt", None)  # None on objects built without Reward.__init__
        if check is not None:
            check()

    def _score(self, x: torch.Tensor, prompts: list, **kw) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


def quoted(value, limit: int = 80) -> str:
    """``repr`` of a user's text for an error message, cut to about ``limit`` characters (never echo a huge input)."""
    text = value if isinstance(value, str) else str(value)
    return repr(text if len(text) <= limit else text[:limit - 3] + "...")


def hi(t: torch.Tensor) -> torch.Tensor:
    """At least float32 (float64 stays float64, for gradient checks)."""
    return t if t.dtype == torch.float64 else t.float()


def as_bchw(images: torch.Tensor) -> torch.Tensor:
    """ComfyUI IMAGE [B,H,W,C] (or a single [H,W,C]) in [0,1] -> [B,3,H,W] (keeps the graph)."""
    if not torch.is_tensor(images):
        raise RewardError("images must be a torch tensor [B,H,W,3] in [0,1]")
    if images.ndim == 3:
        images = images.unsqueeze(0)
    if images.ndim != 4:
        raise RewardError(f"images must be [B,H,W,3], got shape {tuple(images.shape)}")
    c = images.shape[-1]
    x = images.movedim(-1, 1)
    if c == 1:
        x = x.expand(-1, 3, -1, -1)
    elif c == 4:
        x = x[:, :3]
    elif c != 3:
        raise RewardError(f"images must have 1, 3 or 4 channels last, got shape {tuple(images.shape)}")
    if not x.is_floating_point():
        x = x.float() / 255.0
    return x


def expand_prompts(prompt, b: int) -> list:
    if prompt is None or isinstance(prompt, str):
        return [prompt] * b
    prompt = list(prompt)
    if len(prompt) == 1:
        return prompt * b
    if len(prompt) != b:
        raise RewardError(f"got {len(prompt)} prompts for {b} images")
    return prompt


class CompositeReward(Reward):
    """Weighted sum of rewards, each normalised first.

    normalize:
      * ``"none"``: raw scores;
      * ``"range"``: map each reward's nominal ``score_range`` to [0, 1] (fixed affine map, so a batch scores the
        same as its images one by one);
      * ``"batch"``: z-score each reward within the batch (scale-free, but a score then depends on the batch).
    """

    name = "composite"

    def __init__(self, parts: Iterable[tuple[Reward, float]], normalize: str = "range"):
        super().__init__(batch_size=1 << 30)
        self.parts = [(r, float(w)) for r, w in parts if r is not None]
        if not self.parts:
            raise RewardError("a composite reward needs at least one reward")
        if normalize not in ("none", "range", "batch"):
            raise RewardError(f"unknown normalisation '{normalize}' (none, range, batch)")
        self.normalize = normalize
        self.name = " + ".join(f"{w:g}*{r.name}" for r, w in self.parts)
        self.differentiable = all(r.differentiable for r, _ in self.parts)
        self.needs_prompt = any(r.needs_prompt for r, _ in self.parts)
        self.needs_counts = any(r.needs_counts for r, _ in self.parts)
        total = sum(abs(w) for _, w in self.parts) or 1.0
        self.score_range = (0.0, 1.0) if normalize == "range" else (-total, total)

    @property
    def device(self):
        return self.parts[0][0].device

    def to(self, device=None, dtype=None):
        for r, _ in self.parts:
            r.to(device, dtype)
        return self

    def modules(self):
        return [m for r, _ in self.parts for m in r.modules()]

    def leaves(self):
        return [leaf for r, _ in self.parts for leaf in r.leaves()]

    @property
    def input_size(self):
        """The largest of the parts' sizes; None (full size) when any part is size-sensitive."""
        sizes = [r.input_size for r, _ in self.parts]
        return None if any(v is None for v in sizes) else max(sizes)

    def surrogate(self):
        subs = [(r.surrogate(), w) for r, w in self.parts]
        if any(s is None for s, _ in subs):
            return None
        if all(s is r for (s, _), (r, _) in zip(subs, self.parts)):
            return self
        return CompositeReward(subs, self.normalize)

    def describe(self):
        d = super().describe()
        d["parts"] = [{"weight": w, **r.describe()} for r, w in self.parts]
        d["normalize"] = self.normalize
        return d

    def check_prompt(self, prompt):
        for r, _ in self.parts:
            r.check_prompt(prompt)

    def __call__(self, images, prompt=None, **kw):
        total = None
        for r, w in self.parts:
            s = r(images, prompt, **kw)
            s = self._norm(r, s)
            total = w * s if total is None else total + w * s
        return total

    def _norm(self, r: Reward, s: torch.Tensor) -> torch.Tensor:
        if self.normalize == "range":
            lo, hi = r.score_range
            return (s - lo) / (hi - lo if hi != lo else 1.0)
        if self.normalize == "batch":
            if s.numel() < 2:
                return s - s.detach()
            return (s - s.mean()) / (s.std() + 1e-6)
        return s


def finite_or_raise(name: str, s: torch.Tensor) -> torch.Tensor:
    if not torch.isfinite(s).all():
        raise RewardError(f"reward '{name}' produced non-finite scores: {s.tolist()}")
    return s


def logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))
