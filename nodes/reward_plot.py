"""The 'reward vs NFE' plot output of the search nodes."""
import io as _io
import math

import torch


def reward_plot(results, width=640, height=400):
    """Best reward so far vs NFE for each search, as an IMAGE [1, H, W, 3]."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image
    fig, ax = plt.subplots(figsize=(width / 100, height / 100), dpi=100)
    for i, res in enumerate(results):
        pts = [(e["nfe"], e["best_reward"]) for e in res.trace
               if "best_reward" in e and e["best_reward"] is not None and math.isfinite(e["best_reward"])]
        if pts:
            ax.step(*zip(*pts), where="post", label=f"{res.method} seed {res.options.get('seed')}")
    ax.set_xlabel("NFE (model evaluations)")
    ax.set_ylabel("best reward so far")
    ax.set_title("FlowSearch: reward vs compute")
    ax.grid(alpha=0.3)
    if results:
        ax.legend(loc="lower right", fontsize=8)
    buf = _io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    img = Image.open(buf).convert("RGB")
    return torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).reshape(img.height, img.width, 3).float().div(
        255).unsqueeze(0)
