"""The search benchmarks at FLUX.1-schnell shape on a GPU: seconds per NFE and the forward / decode / reward split
of a FlowSearch search at 1024², against the paper's 635 s for 500 NFE on an RTX A6000 (1.27 s/NFE, Table 7).

    .build/venv/bin/python bench/gpu_bench.py --smoke        # CPU, tiny shapes: checks the script works (~1 min)
    python bench/gpu_bench.py                                # on a GPU machine: full-size random FLUX-schnell

Models are random weights with the real shapes (nothing is downloaded): FLUX.1-schnell (3072 wide, 19 double +
38 single blocks, ~12 B parameters, bf16, ~24 GB) built on the device and loaded through
comfy.sd.load_diffusion_model_state_dict, and the FLUX autoencoder (16-channel AutoencoderKL, ae.safetensors
shape) through comfy.sd.VAE. If the full model does not fit, --double/--single pick fewer blocks (the widest that
fits keeps the 3072 width). Rows: RBF at max_batch 1 (the official code's profile: batch-1 forward + one decode per
NFE) and auto, and with {"reward_resolution": 512}; JPEG reward (weight-free; a real reward model adds its own
time, see the reward column). Also: model-call NFE/s at particle batch 1-8 and peak device memory.

On a lent GPU machine (torch 2.11, transformers 5.x, aiohttp preinstalled, no registry access):
  1. carry the ComfyUI tree: run(..., carry=[".build/comfyui"]) (plus a wheel folder for any missing package,
     installed with `pip install --no-index --find-links wheels/ <pkg>`; ComfyUI's own requirements such as
     safetensors, einops, psutil, scipy, pillow, torchsde, kornia, spandrel, av are usually present);
  2. command:  python bench/gpu_bench.py --out $OUT   (about 5 minutes on an H100: ~1-2 min to build the random
     FLUX, then ~60 NFE per row); the JSON lands in $OUT/gpu_bench.json.
Prints its figures last; writes bench/results/gpu_bench.json (or --out)."""
import argparse
import json
import math
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "scripts"), os.path.join(ROOT, "tests", "fixtures"),
                os.path.dirname(os.path.abspath(__file__))]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

PAPER_S_PER_NFE = 635 / 500


def comfy_setup(cpu):
    import host
    from inproc import _load_package
    if host.COMFY_DIR not in sys.path:
        sys.path.insert(0, host.COMFY_DIR)
    import comfy.cli_args
    comfy.cli_args.args.cpu = cpu
    comfy.cli_args.args.use_pytorch_cross_attention = True
    import comfy.model_management  # noqa: F401
    _load_package("comfyui_flowsearch", host.ROOT)
    import importlib
    return (importlib.import_module("comfyui_flowsearch.nodes.search_nodes"),
            importlib.import_module("comfyui_flowsearch.nodes.search_glue"),
            importlib.import_module("comfyui_flowsearch.rewards"))


def flux_state_dict(hidden, double, single, heads, device, dtype, context=4096):
    """FLUX.1-schnell layout (no guidance_in) with random weights generated on `device` in `dtype`."""
    import make_tiny_models as mtm

    class W(mtm._Writer):
        def __init__(self, seed):
            self.g = torch.Generator(device=device).manual_seed(seed)
            self.sd = {}

        def linear(self, name, n_out, n_in, bias=True, gain=1.0):
            w = torch.empty(n_out, n_in, device=device, dtype=dtype)
            self.sd[f"{name}.weight"] = w.normal_(0, gain / math.sqrt(n_in), generator=self.g)
            if bias:
                self.sd[f"{name}.bias"] = torch.zeros(n_out, device=device, dtype=dtype)

        def ones(self, name, n):
            self.sd[name] = torch.ones(n, device=device, dtype=dtype)
    real, mtm._Writer = mtm._Writer, W
    try:
        return mtm.flux(hidden, double, single, heads, context=context, guidance=False)
    finally:
        mtm._Writer = real


def flux_vae(device):
    """The FLUX autoencoder's architecture (16 latent channels) with random weights, as a comfy.sd.VAE."""
    import comfy.sd
    from comfy.ldm.models.autoencoder import AutoencodingEngine
    dd = {'double_z': True, 'z_channels': 16, 'resolution': 256, 'in_channels': 3, 'out_ch': 3, 'ch': 128,
          'ch_mult': [1, 2, 4, 4], 'num_res_blocks': 2, 'attn_resolutions': [], 'dropout': 0.0}
    m = AutoencodingEngine(regularizer_config={'target': "comfy.ldm.models.autoencoder.DiagonalGaussianRegularizer"},
                           encoder_config={'target': "comfy.ldm.modules.diffusionmodules.model.Encoder", 'params': dd},
                           decoder_config={'target': "comfy.ldm.modules.diffusionmodules.model.Decoder", 'params': dd})
    g = torch.Generator().manual_seed(7)
    sd = {}
    for k, v in m.state_dict().items():
        if v.ndim >= 2:
            fan_in = v[0].numel()
            sd[k] = torch.randn(v.shape, generator=g) / math.sqrt(fan_in)
        else:
            sd[k] = torch.ones(v.shape) if ("norm" in k and k.endswith("weight")) else torch.zeros(v.shape)
    vae = comfy.sd.VAE(sd=sd)
    del m
    return vae


def run_search(sn, model, vae, reward, cond, px, budget, steps, max_batch, options, timers):
    out = sn.FlowSearch.execute(model, cond, {"samples": torch.zeros(1, 16, px // 8, px // 8)}, vae, reward, 0,
                                "RBF (paper)", steps, "vp", budget, "", max_batch, 0, 0.0, json.dumps(options))
    return json.loads(out.result[3]), out.result[2].shape[0] + 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true", help="CPU, tiny shapes (checks the script)")
    ap.add_argument("--px", type=int, default=None)
    ap.add_argument("--budget", type=int, default=None)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--double", type=int, default=19)
    ap.add_argument("--single", type=int, default=38)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    cuda = torch.cuda.is_available() and not a.smoke
    dev = torch.device("cuda" if cuda else "cpu")
    if not cuda:
        torch.set_num_threads(1)
    sn, glue, rw = comfy_setup(cpu=not cuda)
    import comfy.sd
    import comfy_env as ce
    px = a.px or (64 if a.smoke else 1024)
    budget = a.budget or (24 if a.smoke else 60)
    hidden, heads = (64, 2) if a.smoke else (3072, 24)
    double, single = (1, 1) if a.smoke else (a.double, a.single)
    dtype = torch.float32 if not cuda else torch.bfloat16
    t0 = time.perf_counter()
    while True:
        try:
            sd = flux_state_dict(hidden, double, single, heads, dev, dtype)
            metadata = {"tiny_flux_config": json.dumps({"num_heads": heads})} if a.smoke else None
            if a.smoke:
                from make_tiny_models import rope_axes
                import comfy.model_detection
                detect = comfy.model_detection.detect_unet_config

                def detect_tiny(state_dict, key_prefix, metadata=None):
                    cfg = detect(state_dict, key_prefix, metadata=metadata)
                    cfg.update(num_heads=heads, axes_dim=rope_axes(hidden // heads))
                    return cfg
                comfy.model_detection.detect_unet_config = detect_tiny
            model = comfy.sd.load_diffusion_model_state_dict(sd, metadata=metadata)
            del sd
            break
        except torch.OutOfMemoryError:
            sd = None
            torch.cuda.empty_cache()
            if single > 0:
                single //= 2
            elif double > 1:
                double //= 2
            else:
                raise
            print(f"out of memory: retrying with {double} double + {single} single blocks", flush=True)
    build_s = time.perf_counter() - t0
    vae = flux_vae(dev)
    n_params = sum(p.numel() for p in model.model.diffusion_model.parameters())
    g = torch.Generator().manual_seed(0)
    cond = [[torch.randn(1, 256, 4096, generator=g) * 0.1, {"pooled_output": torch.randn(1, 768, generator=g) * 0.1}]]
    reward = rw.JpegReward()
    env = type("E", (), {})()
    env.model, env.vae = model, vae
    rows = []
    rr = min(512, px // 2)
    for label, mb, opts in (("batch 1 (official profile)", 1, {}), ("batched (auto)", 0, {}),
                            (f"batched + reward_resolution={rr}", 0, {"reward_resolution": rr})):
        timers = ce.Timers()
        dm = model.model.diffusion_model
        dm.forward = timers.forward.wrap(type(dm).forward.__get__(dm), rows_of=lambda a_, k: int(a_[0].shape[0]))
        vae.decode = timers.decode.wrap(type(vae).decode.__get__(vae), rows_of=lambda a_, k: int(a_[0].shape[0]))
        cls = type(reward)
        reward.__class__ = type("T", (cls,), {"__call__": timers.reward.wrap(cls.__call__)})
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        try:
            rep, n_final = run_search(sn, model, vae, reward, cond, px, budget, a.steps, mb, opts, timers)
        finally:
            if cuda:
                torch.cuda.synchronize()
            wall = time.perf_counter() - t0
            del dm.forward, vae.decode
            reward.__class__ = cls
        nfe = rep["nfe"]
        final = timers.decode.s * n_final / max(timers.decode.rows, 1)  # the node's final decodes, once per run
        rows.append({"label": label, "nfe": nfe, "s_per_nfe": (wall - final) / nfe,
                     "forward_s_per_nfe": timers.forward.s / nfe, "decode_s_per_nfe": (timers.decode.s - final) / nfe,
                     "reward_s_per_nfe": timers.reward.s / nfe, "best_reward": rep["best_reward"],
                     "peak_device_gb": torch.cuda.max_memory_allocated() / 2 ** 30 if cuda else None})
        print(f"  {label}: {rows[-1]['s_per_nfe']:.3f} s/NFE", flush=True)
    res = {"device": torch.cuda.get_device_name() if cuda else ce.machine(1), "smoke": a.smoke, "px": px,
           "budget": budget, "model": f"random FLUX-schnell shape: {hidden} wide, {double} double + {single} single "
                                      f"blocks, {n_params / 1e9:.2f} B params, {dtype}", "build_s": build_s,
           "rows": rows, "paper_s_per_nfe": PAPER_S_PER_NFE, "torch": torch.__version__}
    path = os.path.join(a.out, "gpu_bench.json") if a.out else None
    if path:
        os.makedirs(a.out, exist_ok=True)
        with open(path, "w") as f:
            json.dump(res, f, indent=1)
    else:
        path = ce.save("gpu_bench" + ("_smoke" if a.smoke else ""), res)
    print(f"device: {res['device']}; {res['model']}; {px}² px, budget {budget}")
    print(f"{'row':<34} {'s/NFE':>7} {'fwd':>7} {'decode':>7} {'reward':>7} {'vs paper':>8} {'peak GB':>8}")
    for r in rows:
        pk = f"{r['peak_device_gb']:.1f}" if r["peak_device_gb"] is not None else "-"
        print(f"{r['label']:<34} {r['s_per_nfe']:>7.3f} {r['forward_s_per_nfe']:>7.3f} {r['decode_s_per_nfe']:>7.3f} "
              f"{r['reward_s_per_nfe']:>7.3f} {PAPER_S_PER_NFE / r['s_per_nfe']:>7.2f}x {pk:>8}")
    print(f"paper (RTX A6000, Table 7): {PAPER_S_PER_NFE:.2f} s/NFE; 'vs paper' = paper s/NFE / ours"
          + (" (smoke run on CPU at tiny shapes: not comparable)" if a.smoke else ""))


if __name__ == "__main__":
    main()
