"""A small *learned* reward for the playground, trained in seconds: a CNN that counts the six object types on 64 px
world pictures; reward = −RSS of its counts against the caption's (the paper's counting reward, with a learned
counter; RSS as playground/counter.py defines it). Bench-only (bench/reward_agreement.py): it is a trained image
model whose processor works at 64 px, so "auto" decodes the playground's 128 px pictures at 64 px for it, and its
ranking is driven by content (counts), not by the random features of the tiny CLIPs. Library module: no __main__."""
import numpy as np
import torch
import torch.nn.functional as F

SIZE = 64  # the counter's input: the 32 px world at 2×


class CountNet(torch.nn.Module):
    """Four stride-2 3×3 convolutions (64 → 4 px), global mean, one linear layer → six non-negative counts."""

    def __init__(self, n_types):
        super().__init__()
        ch = [3, 32, 64, 64, 128]
        self.convs = torch.nn.ModuleList([torch.nn.Conv2d(ch[i], ch[i + 1], 3, 2, 1) for i in range(4)])
        self.head = torch.nn.Linear(ch[-1], n_types)

    def forward(self, x):
        for conv in self.convs:
            x = F.silu(conv(x))
        return F.softplus(self.head(x.mean((2, 3))))


def counts(world, groups):
    """Caption groups → the count of every object type (world.TYPES order; absent types 0)."""
    v = torch.zeros(len(world.TYPES))
    for g in groups:
        v[world.TYPES.index(g.type)] += g.count
    return v


def training_batch(world, rng, n):
    """World pictures at 64 px (nearest 2×; 30 % blurred like soft clean estimates; light noise) and their counts."""
    groups, imgs = world.batch(rng, n)
    x = F.interpolate(torch.from_numpy(imgs).movedim(-1, 1), scale_factor=SIZE // world.SIZE, mode="nearest")
    blur = torch.from_numpy(rng.random(n) < 0.3)[:, None, None, None]
    xb = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="bilinear", align_corners=False)
    x = torch.where(blur, xb, x)
    noise = torch.from_numpy(rng.standard_normal(x.shape).astype(np.float32))
    return (x + 0.03 * noise).clamp(0, 1), torch.stack([counts(world, g) for g in groups])


def train(world, steps=1500, seed=1, batch=32):
    """Adam 2e-3 on MSE; every batch drawn from (seed, step). → (net in eval mode, {held-out mse, exact share})."""
    torch.manual_seed(seed)
    net = CountNet(len(world.TYPES))
    opt = torch.optim.Adam(net.parameters(), 2e-3)
    for step in range(steps):
        x, y = training_batch(world, np.random.default_rng([seed, step]), batch)
        loss = F.mse_loss(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    net.eval()
    x, y = training_batch(world, np.random.default_rng([seed, 10 ** 6]), 256)
    with torch.no_grad():
        p = net(x)
    return net, {"steps": steps, "held_out_mse": float(F.mse_loss(p, y)),
                 "held_out_exact": float((p.round() == y).all(1).float().mean())}


def reward(rw, world, counter, net):
    """The counter as a pack Reward (rewards.base.Reward): input_size 64; −RSS over the caption's types, the
    playground's own definition (playground/counter.py `rss`), on the net's counts."""

    class LearnedCountReward(rw.Reward):
        name, needs_prompt, input_size, score_range = "learned_count", True, SIZE, (-36.0, 0.0)

        def _score(self, x, prompts, **kw):
            x = x if x.shape[-1] == SIZE and x.shape[-2] == SIZE else F.interpolate(x, size=(SIZE, SIZE), mode="area")
            pred = net(x)
            return -torch.stack([counter.rss(dict(zip(world.TYPES, p)), world.parse_caption(q))
                                 for p, q in zip(pred, prompts)])

    return LearnedCountReward()
