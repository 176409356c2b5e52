"""The playground outside ComfyUI's graph: the shipped FLUX as `denoise(x, t)` and the Count Objects Reward as
`reward(x0)` for `sampling.search`, plus the benchmark's cases and metrics (bench/playground.py, the tests).

    pg = Playground()                         # shipped weights, CPU
    case = cases(1)[0]
    res = sampling.search(pg.denoiser(case), pg.reward(case), pg.shape, method="rbf", nfe_budget=100, seed=3)
    pg.judge(res.sample, case)                # {"acc": 1.0, "acc_heldout": 1.0, "rss": 0.0, ...}

The same stock Flux class and the same reward class the nodes use; decoding is the codec's model-space inverse
(what ComfyUI's VAEDecode of the playground VAE gives at world scale)."""
import json
import os

import numpy as np
import torch

from . import codec, counter, world
from .comfy_boot import boot

WEIGHTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights", "playground_flux.safetensors")
# How the playground is searched (workflows, bench, tests): the paper's 10 steps, on FLUX's own linear path with
# uniform steps. The playground FLUX is not step-distilled like FLUX.1-schnell: its clean estimate x0̂ is sharp only
# near the clean end, and a search returns the x0̂ of its last evaluation. The paper grid's last evaluation sits at
# linear t ≈ 0.44 (VP: t ≈ 0.71), the VP clock's uniform grid at t ≈ 0.25, the linear uniform grid at t = 0.1. At
# 100 NFE over 24 cases (reward-counter / held-out accuracy): RBF vp+paper 1.00 / 0.04 (blurs the loose counter
# accepts: reward hacking), vp+uniform 0.50 / 0.33, linear+paper 0.96 / 0.38, linear+uniform 0.75 / 0.67.
SETTINGS = {"steps": 10, "interpolant": "linear", "grid": "uniform"}


def load_flux(path=WEIGHTS, device="cpu"):
    """The stock comfy Flux module with a playground weights file (fp16 on disk → float32)."""
    from safetensors import safe_open
    boot(device)
    from . import model
    with safe_open(path, "pt") as f:
        cfg = json.loads(f.metadata()["flowsearch_playground_config"])
        sd = {k: f.get_tensor(k).float() for k in f.keys()}
    flux = model.build(cfg)
    flux.load_state_dict(sd, strict=True)
    return flux.eval().to(device)


def cases(n, seed=0, n_groups=3):
    """n benchmark cases: (caption groups, search seed), fixed by `seed`. Three groups by default: the hard task
    (with two, Best-of-N is saturated by 300 NFE)."""
    rng = np.random.default_rng([seed, 424242])
    return [(world.sample_groups(rng, n_groups), int(rng.integers(0, 2 ** 31))) for _ in range(n)]


def to_images(x0):
    """Model-space latents → world images [B, 32, 32, 3] in [0, 1] (torch, IMAGE layout)."""
    return ((codec.from_model_space(x0.float()) + 1) / 2).clamp(0, 1).movedim(1, -1)


class Playground:
    shape = (codec.LATENT_CHANNELS, world.SIZE // 2, world.SIZE // 2)

    def __init__(self, path=WEIGHTS, device="cpu"):
        self.device = device
        self.flux = load_flux(path, device)
        from rewards.count_objects import CountObjectsReward
        self.scorer = CountObjectsReward(pixel_scale=1)

    def denoiser(self, case):
        """denoise(x, t) → x0̂ on FLUX's linear path, conditioned on the case's caption."""
        ctx, y = (v[None].to(self.device) for v in codec.encode_groups(case[0]))

        def denoise(x, t):
            with torch.no_grad():
                v = self.flux(x, t.to(x.dtype), ctx.expand(x.shape[0], -1, -1), y=y.expand(x.shape[0], -1))
            return x - t.to(x.dtype).view(-1, 1, 1, 1) * v
        return denoise

    def reward(self, case):
        """reward(x0̂) → −RSS by the reward counter, for the case's caption."""
        text = world.caption(case[0])
        return lambda x0: self.scorer(to_images(x0), text)

    def judge(self, x0, case):
        """Both counters on the final sample(s): acc / acc_heldout (exact on both types), rss (reward counter)."""
        rows = [(counter.count_reward(img), counter.count_heldout(img)) for img in to_images(x0).cpu().numpy()]
        g = case[0]
        return {"acc": float(np.mean([counter.exact(r, g) for r, _ in rows])),
                "acc_heldout": float(np.mean([counter.exact(h, g) for _, h in rows])),
                "rss": float(np.mean([counter.rss(r, g) for r, _ in rows])),
                "agree": float(np.mean([all(r[t.type] == h[t.type] for t in g) for r, h in rows]))}
