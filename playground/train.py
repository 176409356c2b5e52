"""Train the playground FLUX with rectified flow: `python -m playground.train [--device cuda]`.

Linear path x_t = (1 − t)·x0 + t·ε, target v = ε − x0 (FLUX's CONST parametrisation, so ComfyUI's Flux model
class samples it unchanged), t ~ logit-normal(0, 1). AdamW with warm-up and cosine decay, gradient clip 1, EMA.
Every batch is drawn from (seed, step) alone, so a run is reproducible. Writes to --out: the EMA weights of the
selected checkpoint as fp16 safetensors, `train_log.jsonl`, `loss_curve.png` and `manifest.json`. Checkpoints
are judged on plain samples; the one whose samples are most often *real objects* by the held-out counter (and
that follows the caption's counts) is shipped."""
import argparse
import hashlib
import json
import math
import os
import sys
import time

import numpy as np


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1.5e-3)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--threads", type=int, default=2, help="CPU threads (the target machine has 2 cores)")
    p.add_argument("--eval-every", type=int, default=500, help="judge a checkpoint every N steps (0 = only the end)")
    p.add_argument("--eval-samples", type=int, default=96)
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights"))
    p.add_argument("--config", default="", help="JSON overrides of playground.model.CONFIG (experiments)")
    p.add_argument("--max-minutes", type=float, default=0, help="stop early after this much wall time (0 = off)")
    return p.parse_args(argv)


def lr_at(step, args):
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    frac = (step - args.warmup) / max(1, args.steps - args.warmup)
    return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))


def make_batch(args, step, device):
    """(x0 model-space [B,16,16,16], context, y, t, ε), all from (seed, step)."""
    import torch
    from . import codec, world
    rng = np.random.default_rng([args.seed, step])
    groups, imgs = world.batch(rng, args.batch)
    x0 = codec.to_model_space(torch.from_numpy(imgs))
    ctx, y = codec.encode_batch(groups)
    g = torch.Generator().manual_seed(args.seed * 1_000_003 + step)
    t = torch.sigmoid(torch.randn(args.batch, generator=g))
    eps = torch.randn(x0.shape, generator=g)
    return [v.to(device) for v in (x0, ctx, y, t, eps)]


def train_step(flux, opts, batch):
    x0, ctx, y, t, eps = batch
    tt = t.view(-1, 1, 1, 1)
    v = flux(((1 - tt) * x0 + tt * eps), t, ctx, y=y, transformer_options=opts)
    return ((v - (eps - x0)) ** 2).mean()


def judge(flux, args, step, device, n):
    """Plain 10-step Euler samples of n fixed captions → count-following metrics of both counters."""
    import torch
    from scipy.stats import spearmanr
    from . import codec, counter, world
    rng = np.random.default_rng([args.seed, 10 ** 9])
    groups = [world.sample_groups(rng) for _ in range(n)]
    ctx, y = codec.encode_batch(groups)
    g = torch.Generator().manual_seed(args.seed + 17)
    x = torch.randn(n, codec.LATENT_CHANNELS, world.SIZE // 2, world.SIZE // 2, generator=g).to(device)
    ts = torch.linspace(1, 0, 11)
    with torch.no_grad():
        for a, b in zip(ts[:-1], ts[1:]):
            v = flux(x, a.repeat(n).to(device), ctx.to(device), y=y.to(device))
            x = x + (b - a) * v
    imgs = ((codec.from_model_space(x.cpu()) + 1) / 2).clamp(0, 1).movedim(1, -1).numpy()
    acc = acc_h = agree = 0
    tgt, got = [], []
    for img, gr in zip(imgs, groups):
        cr, ch = counter.count_reward(img), counter.count_heldout(img)
        acc += counter.exact(cr, gr)
        acc_h += counter.exact(ch, gr)
        agree += all(cr[gg.type] == ch[gg.type] for gg in gr)
        tgt += [gg.count for gg in gr]
        got += [cr[gg.type] for gg in gr]
    return {"step": step, "acc": acc / n, "acc_heldout": acc_h / n, "agreement": agree / n,
            "spearman": float(spearmanr(tgt, got).statistic), "images": imgs}


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_fp16(flux_state, path, meta):
    import torch
    from safetensors.torch import save_file
    save_file({k: v.detach().to("cpu", torch.float16).contiguous() for k, v in flux_state.items()}, path,
              metadata=meta)


def plot_loss(log, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    steps = [r["step"] for r in log if "loss" in r]
    loss = [r["loss"] for r in log if "loss" in r]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(steps, loss, lw=0.6, alpha=0.5, label="batch loss")
    k = 50
    if len(loss) > k:
        ax.plot(steps[k - 1:], np.convolve(loss, np.ones(k) / k, "valid"), lw=1.5, label=f"mean of {k}")
    ax.set_xlabel("step")
    ax.set_ylabel("rectified-flow loss")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    from .comfy_boot import boot
    boot(args.device)
    import torch
    from . import model as pg_model
    from .trainable import init_weights, out_of_place_options
    torch.manual_seed(args.seed)
    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    config = {**pg_model.CONFIG, **json.loads(args.config or "{}")}
    flux = init_weights(pg_model.build(config), args.seed).to(args.device)
    ema = {k: v.detach().clone() for k, v in flux.state_dict().items()}
    opts = out_of_place_options(flux)
    optim = torch.optim.AdamW(flux.parameters(), lr=args.lr, betas=(0.9, 0.99), weight_decay=0.0)
    os.makedirs(args.out, exist_ok=True)
    ckpt_dir = os.path.join(args.out, "checkpoints")
    os.makedirs(ckpt_dir, exist_ok=True)
    log, judged = [], []
    logf = open(os.path.join(args.out, "train_log.jsonl"), "w")
    t_wall, t_cpu = time.time(), time.process_time()
    n_params = sum(p.numel() for p in flux.parameters())
    print(f"[train] {n_params / 1e6:.3f} M parameters, {args.steps} steps of {args.batch}, device {args.device}",
          flush=True)
    step = 0
    for step in range(args.steps):
        for group in optim.param_groups:
            group["lr"] = lr_at(step, args)
        loss = train_step(flux, opts, make_batch(args, step, args.device))
        optim.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(flux.parameters(), 1.0)
        optim.step()
        decay = min(0.998, (1 + step) / (10 + step))
        with torch.no_grad():
            for k, v in flux.state_dict().items():
                ema[k].mul_(decay).add_(v.detach(), alpha=1 - decay)
        rec = {"step": step, "loss": float(loss.detach()), "grad_norm": float(gn), "lr": lr_at(step, args),
               "wall_s": round(time.time() - t_wall, 2), "cpu_s": round(time.process_time() - t_cpu, 2)}
        log.append(rec)
        logf.write(json.dumps(rec) + "\n")
        if step % 50 == 0:
            print(f"[train] step {step} loss {rec['loss']:.4f} wall {rec['wall_s']:.0f}s", flush=True)
            logf.flush()
        last = step == args.steps - 1 or (args.max_minutes and time.time() - t_wall > 60 * args.max_minutes)
        if last or (args.eval_every and step > 0 and step % args.eval_every == 0):
            path = os.path.join(ckpt_dir, f"step{step + 1:05d}.safetensors")
            save_fp16(ema, path, pg_model.metadata(config))
            live = {k: v.detach().clone() for k, v in flux.state_dict().items()}
            flux.load_state_dict(ema)
            j = judge(flux, args, step + 1, args.device, args.eval_samples)
            flux.load_state_dict(live)
            imgs = j.pop("images")
            judged.append({**j, "path": path})
            logf.write(json.dumps({"judge": j}) + "\n")
            print(f"[train] judge {j}", flush=True)
            _save_grid(imgs[:32], os.path.join(args.out, "samples.png"))
        if last:
            break
    logf.close()
    wall, cpu = time.time() - t_wall, time.process_time() - t_cpu
    plot_loss(log, os.path.join(args.out, "loss_curve.png"))
    pick = select(judged)
    final = os.path.join(args.out, "playground_flux.safetensors")
    os.replace(pick["path"], final)
    final_loss = float(np.mean([r["loss"] for r in log[-100:]]))
    manifest = {
        "command": "python -m playground.train " + " ".join(argv if argv is not None else sys.argv[1:]),
        "seed": args.seed, "steps": step + 1, "batch": args.batch, "device": args.device,
        "final_loss_mean_last_100": round(final_loss, 5), "first_loss": round(log[0]["loss"], 5),
        "wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1), "parameters": n_params, "config": config,
        "selected": {k: v for k, v in pick.items() if k != "path"}, "judged": [
            {k: v for k, v in j.items() if k != "path"} for j in judged],
        "files": {}}
    write_manifest(args.out, manifest)
    print(f"[train] done in {wall / 60:.1f} min wall ({cpu / 60:.1f} min CPU); final loss {final_loss:.4f}; "
          f"selected step {pick['step']}", flush=True)
    return manifest


def select(judged):
    """The checkpoint whose plain samples are real objects: held-out agreement ≥ 0.7 first, then count-following
    (Spearman of target vs counted), then the latest."""
    return max(judged, key=lambda j: (j["agreement"] >= 0.7, round(j["spearman"], 2), j["step"]))


def write_manifest(out, manifest):
    """Record sha256 and size of every shipped file (the codec has no weights; the caption encoder neither)."""
    for name in sorted(os.listdir(out)):
        if name.endswith((".safetensors", ".png")) and os.path.isfile(os.path.join(out, name)):
            p = os.path.join(out, name)
            manifest["files"][name] = {"sha256": sha256(p), "bytes": os.path.getsize(p)}
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


def _save_grid(imgs, path, cols=8, zoom=4):
    from PIL import Image
    rows = [np.concatenate(list(imgs[i:i + cols]), 1) for i in range(0, len(imgs) - len(imgs) % cols, cols)]
    if not rows:
        return
    grid = (np.concatenate(rows, 0) * 255).astype(np.uint8)
    Image.fromarray(grid).resize((grid.shape[1] * zoom, grid.shape[0] * zoom), Image.NEAREST).save(path)


if __name__ == "__main__":
    main()
