"""Train a learned decoder for the playground latent: `python -m playground.train_decoder [--steps 3000]`.

The playground codec (codec.py) is an exact pixel shuffle: decoding costs nothing, so it cannot show what scoring
candidates on a smaller decode saves with a real VAE, nor whether a *learned* convolutional decoder keeps a reward's
ranking when it decodes an area-downsampled latent (issue 13). This script trains ComfyUI's own TAESD decoder
architecture (`comfy.taesd.taesd.Decoder(16)`, 1.2 M parameters, 8× upsampling) to reproduce the codec's display
pixels from model-space latents. Saved in ComfyUI's TAESD layout (`taesd_decoder.*` plus FLUX's `vae_scale` /
`vae_shift`), the file loads through the stock `comfy.sd.VAE` as a real convolutional VAE decoder of the playground
FLUX (decode only: there is no encoder).

Training pairs: latents of world images (codec.to_model_space), blended, blurred, noised and with junk in the 4
unused channels, so the decoder also sees the soft clean estimates a search scores; target = the codec's decode
(nearest ×4, [0, 1]) of the same latent. Random latent crops keep a CPU step cheap. Adam, cosine decay, L1 + MSE.
Every batch is drawn from (seed, step) alone. Writes playground_taesd_decoder.safetensors (fp16) and
decoder_manifest.json (command, losses, PSNR against the codec on held-out images) to --out (default
playground/weights/decoder; the shipped file: --steps 2500, 17 min on 2 CPU threads)."""
import argparse
import hashlib
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from . import codec, world  # pure torch / numpy (no ComfyUI)

FILE = "playground_taesd_decoder.safetensors"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--crop", type=int, default=6, help="latent crop side (pixels: 8× that)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights", "decoder"))
    p.add_argument("--max-minutes", type=float, default=0, help="stop early after this much wall time (0 = off)")
    return p.parse_args(argv)


def build_decoder(seed):
    """ComfyUI's TAESD decoder (16 latent channels) with PyTorch's default conv initialisation drawn from `seed`."""
    from comfy.taesd.taesd import Decoder
    torch.manual_seed(seed)
    dec = Decoder(latent_channels=16)
    for m in dec.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.Conv2d.reset_parameters(m)   # comfy.ops.disable_weight_init leaves the weights uninitialised
    return dec


def target_pixels(z):
    """The codec's display decode of model-space latents [B, 16, h, w] → [B, 3, 8h, 8w] in [0, 1]."""
    x = F.interpolate(codec.from_model_space(z), scale_factor=codec.DISPLAY, mode="nearest")
    return ((x + 1) / 2).clamp(0, 1)


def training_latents(rng, n):
    """n model-space latents [n, 16, 16, 16]: world images, soft blends of them, blurs, noise, junk channels."""
    _, imgs = world.batch(rng, 3 * n)
    z = codec.to_model_space(torch.from_numpy(imgs)).view(3, n, 16, 16, 16)
    w = torch.from_numpy(rng.dirichlet([0.5, 0.5, 0.5], size=n).astype(np.float32)).T
    keep = torch.from_numpy(rng.random(n) < 0.4)            # 40 % clean images, 60 % blends
    w = torch.where(keep[None], torch.tensor([1.0, 0, 0])[:, None], w)
    z = (w[..., None, None, None] * z).sum(0)
    shrink = torch.from_numpy(rng.uniform(0.3, 1.0, size=(n, 1, 1, 1)).astype(np.float32))
    soft = torch.from_numpy(rng.random(n) < 0.3)[:, None, None, None]
    z = torch.where(soft, z * shrink, z)                    # low-contrast estimates (early in the trajectory)
    blur = torch.from_numpy(rng.random(n) < 0.3)[:, None, None, None]
    zb = F.interpolate(F.avg_pool2d(z, 2), scale_factor=2, mode="bilinear", align_corners=False)
    z = torch.where(blur, zb, z)
    sigma = torch.from_numpy(rng.uniform(0, 0.25, size=(n, 1, 1, 1)).astype(np.float32))
    z = z + sigma * torch.from_numpy(rng.standard_normal(z.shape).astype(np.float32))
    junk = torch.from_numpy(rng.uniform(0, 0.5, size=(n, 1, 1, 1)).astype(np.float32))
    z[:, 12:] = junk * torch.from_numpy(rng.standard_normal((n, 4, 16, 16)).astype(np.float32))
    return z


def crops(rng, z, side):
    """Random side×side latent crops of z and the matching 8·side pixel targets."""
    n, _, h, w = z.shape
    ys, xs = rng.integers(0, h - side + 1, size=n), rng.integers(0, w - side + 1, size=n)
    zc = torch.stack([z[i, :, y:y + side, x:x + side] for i, (y, x) in enumerate(zip(ys, xs))])
    return zc, target_pixels(zc)


def lr_at(step, args):
    warm = 100
    if step < warm:
        return args.lr * (step + 1) / warm
    return 0.5 * args.lr * (1 + math.cos(math.pi * (step - warm) / max(1, args.steps - warm)))


def psnr(dec, z):
    """PSNR (dB) of the decoder against the codec on full 16×16 latents."""
    with torch.no_grad():
        mse = F.mse_loss(dec(z).clamp(0, 1), target_pixels(z)).item()
    return 10 * math.log10(1 / max(mse, 1e-12))


def state_dict(dec):
    """ComfyUI's TAESD file layout: taesd_decoder.* and FLUX's latent scale/shift (comfy.latent_formats.Flux)."""
    sd = {f"taesd_decoder.{k}": v.detach().half().contiguous() for k, v in dec.state_dict().items()}
    sd["vae_scale"] = torch.tensor(codec.FLUX_SCALE)
    sd["vae_shift"] = torch.tensor(codec.FLUX_SHIFT)
    return sd


def fit(dec, args):
    """The training loop: Adam with lr_at's schedule on L1 + MSE, gradients clipped at 1. → per-step losses."""
    opt = torch.optim.Adam(dec.parameters(), lr=args.lr)
    t0, log = time.time(), []
    for step in range(args.steps):
        rng = np.random.default_rng([args.seed, step])
        zc, y = crops(rng, training_latents(rng, args.batch), args.crop)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args)
        out = dec(zc)
        loss = F.l1_loss(out, y) + F.mse_loss(out, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(dec.parameters(), 1.0)
        opt.step()
        log.append(loss.item())
        if step % 100 == 0 or step == args.steps - 1:
            print(f"step {step} loss {log[-1]:.5f} ({time.time() - t0:.0f} s)", flush=True)
        if args.max_minutes and time.time() - t0 > 60 * args.max_minutes:
            print(f"stopping at step {step}: --max-minutes", flush=True)
            break
    dec.eval()
    return log


def save(dec, manifest, out):
    """The fp16 decoder file and decoder_manifest.json (with the file's sha256) in `out`."""
    from safetensors.torch import save_file
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, FILE)
    save_file(state_dict(dec), path, metadata={"flowsearch_playground_decoder": "1"})
    with open(path, "rb") as f:
        manifest["files"] = {FILE: {"sha256": hashlib.sha256(f.read()).hexdigest(), "bytes": os.path.getsize(path)}}
    with open(os.path.join(out, "decoder_manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    from .comfy_boot import boot
    boot("cpu")
    dec = build_decoder(args.seed)
    held = training_latents(np.random.default_rng([args.seed, 999]), 32)
    held_clean = codec.to_model_space(torch.from_numpy(world.batch(np.random.default_rng([args.seed, 998]), 32)[1]))
    t0 = time.time()
    log = fit(dec, args)
    manifest = {"command": "python -m playground.train_decoder " + " ".join(sys.argv[1:] if argv is None else argv),
                "seed": args.seed, "steps_run": len(log), "batch": args.batch, "crop": args.crop, "lr": args.lr,
                "first_loss": log[0], "final_loss_mean_last_100": float(np.mean(log[-100:])),
                "psnr_db_clean_images": psnr(dec, held_clean), "psnr_db_training_mix": psnr(dec, held),
                "parameters": sum(p.numel() for p in dec.parameters()), "wall_seconds": round(time.time() - t0),
                "architecture": "comfy.taesd.taesd.Decoder(latent_channels=16)", "dtype": "float16"}
    save(dec, manifest, args.out)
    print(json.dumps(manifest, indent=1))
    return manifest


if __name__ == "__main__":
    main()
