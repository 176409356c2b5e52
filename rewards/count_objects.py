"""Count Objects Reward: the paper's counting reward −RSS (§5.3) for the playground world, weight-free.

Targets come from the prompt in the playground caption grammar ("three red squares and two blue crosses") or
from an explicit override in the same grammar. Counting is colour- and shape-aware (playground/counter.py).
`details()` adds what the stricter held-out counter sees, so a report shows when a search fools the reward."""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from .base import Reward, RewardError

try:  # inside ComfyUI the pack is one package; tests and scripts import `rewards` and `playground` top-level
    from ..playground import codec, counter, world
except ImportError:
    from playground import codec, counter, world

MAX_TARGET_GROUPS = len(world.TYPES)


@functools.lru_cache(maxsize=256)
def parse_targets(text, source="input 'targets'"):
    """Caption-grammar text → (Group, ...); a RewardError that names ``source`` (the input the text came from) and
    the grammar otherwise. Cached: the reward reads the same prompt on every NFE batch."""
    try:
        return tuple(world.parse_caption(text, max_groups=MAX_TARGET_GROUPS))
    except ValueError as e:
        raise RewardError(f"Count Objects Reward ({source}): {e}") from None


class CountObjectsReward(Reward):
    """−Σ (count − target)² over the target types, counted on each image by the reward counter.

    `targets`: caption-grammar text that overrides the prompt ('' = read the prompt). `pixel_scale`: images are
    area-downsampled by this factor first (the playground VAE shows pictures 4× enlarged)."""

    differentiable = False
    name = "count_objects"
    score_range = (-72.0, 0.0)

    def __init__(self, targets: str = "", pixel_scale: int = codec.DISPLAY, batch_size: int = 64):
        super().__init__(batch_size)
        self.targets = parse_targets(targets) if (targets or "").strip() else None
        self.needs_prompt = self.targets is None
        self.pixel_scale = int(pixel_scale)
        if self.pixel_scale < 1:
            raise RewardError(f"pixel_scale must be a positive integer, got {pixel_scale!r}")

    def groups(self, prompt):
        """The targets for one prompt (the override when set)."""
        if self.targets is not None:
            return self.targets
        if prompt is None or not str(prompt).strip():
            raise RewardError("Count Objects Reward: no targets. Fill in the prompt (e.g. 'three red squares and two "
                              "blue crosses') or the reward's 'targets' field.")
        return parse_targets(str(prompt), "the prompt")

    def check_prompt(self, prompt):
        self.groups(prompt)

    def world_images(self, x):
        """[b, 3, H, W] in [0, 1] → numpy [b, H/s, W/s, 3] at the world's own pixel size."""
        s = self.pixel_scale
        if x.shape[-1] % s or x.shape[-2] % s:
            raise RewardError(f"Count Objects Reward: the images are {x.shape[-1]}×{x.shape[-2]} px, not a multiple "
                              f"of pixel_scale={s}; decode with the FlowSearch Playground VAE")
        x = F.avg_pool2d(x.detach().float(), s) if s > 1 else x.detach().float()
        return x.clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()

    def _score(self, x, prompts, **kw):
        out = [-float(counter.rss(counter.count_reward(img), self.groups(p)))
               for img, p in zip(self.world_images(x), prompts)]
        return torch.tensor(out, dtype=torch.float32, device=x.device)

    def details(self, images, prompt=None):
        """Per image: the targets, both counters' counts of the target types, RSS and exact hits."""
        from .base import as_bchw, expand_prompts
        x = as_bchw(images)
        rows = []
        for img, p in zip(self.world_images(x), expand_prompts(prompt, x.shape[0])):
            groups = self.groups(p)
            cr, ch = counter.count_reward(img), counter.count_heldout(img)
            rows.append({"targets": world.caption(groups),
                         "counts": {" ".join(g.type): cr[g.type] for g in groups},
                         "counts_heldout": {" ".join(g.type): ch[g.type] for g in groups},
                         "rss": counter.rss(cr, groups), "exact": counter.exact(cr, groups),
                         "exact_heldout": counter.exact(ch, groups)})
        return rows

    def describe(self):
        d = super().describe()
        d["targets"] = world.caption(self.targets) if self.targets else "from the prompt"
        return d
