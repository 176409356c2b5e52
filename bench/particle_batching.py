"""Particle batching: NFE/s of the model call at particle batch 1, 2, 4, 8, 16 and the efficiency vs ideal
linear scaling, efficiency(b) = NFE/s(b) / (b · NFE/s(1)) (1 = batching is free, 1/b = no gain at all).

    .build/venv/bin/python bench/particle_batching.py [--quick] [--min3072 BASE|auto] [--threads 1]
    .build/venv/bin/python bench/particle_batching.py --smoke   # batches 1 and 8, 1 repeat (seconds; CI)

Rows: the tiny FLUX h64 (2+2 blocks) and, with --min3072, the 3072-wide one-block FLUX (770 MB, built by
`tests/fixtures/make_tiny_models.py --base BASE --min3072`; 'auto' builds it in .build/bench_base if missing),
timed through the callable a KSAMPLER gets (ComfyUI's cond batching + apply_model), the path the search uses.
Also on the tiny FLUX: a whole SVDD search (decode + reward included) at max_batch b. Target ≥ 0.8 at batch 8
where the hardware allows: on a small CPU the matmuls are compute bound already at batch 1 for the wide model,
and only per-call overhead is amortised for the tiny one. Prints the table last; writes
bench/results/particle_batching.json and .png."""
import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import comfy_env as ce  # noqa: E402
import torch  # noqa: E402

BATCHES = (1, 2, 4, 8, 16)


def forward_rate(env, model, batches, px, reps, cond):
    import comfy.samplers
    from comfy_extras.nodes_custom_sampler import Guider_Basic
    rates = {}

    def fn(model_k, x, sigmas, extra_args=None, callback=None, disable=None):
        for b in batches:
            xb = x.repeat(b, 1, 1, 1)
            s = sigmas[1] * xb.new_ones([b])
            model_k(xb, s, **(extra_args or {}))  # warm-up
            ts = []
            for _ in range(reps(b)):
                t0 = time.perf_counter()
                model_k(xb, s, **(extra_args or {}))
                ts.append(time.perf_counter() - t0)
            rates[b] = b / ce.median(ts)
        return x
    guider = Guider_Basic(model)
    guider.set_conds(cond)
    lat = torch.zeros(1, 16, px // 8, px // 8)
    guider.sample(torch.randn_like(lat), lat, comfy.samplers.KSAMPLER(fn), torch.tensor([1.0, 0.5, 0.0]), seed=0,
                  disable_pbar=True)
    return rates


def search_rate(env, batches, px, budget):
    reward = env.reward("brightness")
    out = {}
    for b in batches:
        env.search_only("svdd", budget=budget, px=px, reward=reward, max_batch=b, options={"k": budget // 20})
        t0 = time.perf_counter()
        res = env.search_only("svdd", budget=budget, px=px, reward=reward, max_batch=b, options={"k": budget // 20})
        out[b] = res.nfe / (time.perf_counter() - t0)
    return out


def eff(rates):
    return {b: rates[b] / (b * rates[1]) for b in rates}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--smoke", action="store_true", help="batches 1 and 8, 1 repeat, a 40-NFE search: checks the "
                                                         "script (CI)")
    ap.add_argument("--px", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--min3072", default=None, help="ComfyUI base dir holding flux_min_3072.safetensors, or 'auto'")
    a = ap.parse_args()
    env = ce.ComfyEnv(threads=a.threads)
    rows = {}
    reps = (lambda b: 1) if a.smoke else (lambda b: 5) if a.quick else (lambda b: 11)
    batches = (1, 8) if a.smoke else BATCHES
    rows["tiny FLUX h64 (2+2 blocks), model call"] = forward_rate(env, env.sampling_nodes.convert_model(env.model, "vp"),
                                                                  batches, a.px, reps, env.cond)
    rows["tiny FLUX h64, whole SVDD search (n=2, k=budget/20)"] = search_rate(
        env, (1, 8) if a.smoke else (1, 4, 16) if a.quick else BATCHES, a.px, 40 if a.smoke else 80 if a.quick else 160)
    skipped = None
    if a.min3072:
        base = os.path.join(ce.ROOT, ".build", "bench_base") if a.min3072 == "auto" else a.min3072
        path = os.path.join(base, "models", "diffusion_models", "flux_min_3072.safetensors")
        if not os.path.exists(path):
            subprocess.run([sys.executable, os.path.join(ce.ROOT, "tests", "fixtures", "make_tiny_models.py"),
                            "--base", base, "--min3072"], check=True)
        import comfy.sd
        t0 = time.perf_counter()
        wide = comfy.sd.load_diffusion_model(path)
        load_s = time.perf_counter() - t0
        g = torch.Generator().manual_seed(0)
        cond = [[torch.randn(1, 16, 4096, generator=g) * 0.1, {"pooled_output": torch.randn(1, 768, generator=g) * 0.1}]]
        rows["FLUX 3072 wide, 1 double block, model call"] = forward_rate(
            env, env.sampling_nodes.convert_model(wide, "vp"), batches, a.px,
            (lambda b: 1) if a.smoke else (lambda b: 3) if a.quick else (lambda b: 5), cond)
        rows["FLUX 3072 wide, 1 double block, model call"]["load_s"] = load_s
    else:
        skipped = "3072-wide FLUX not run (pass --min3072 BASE or --min3072 auto; ~770 MB, ~1 min to build)"
    effs = {k: eff({b: v for b, v in r.items() if isinstance(b, int)}) for k, r in rows.items()}
    res = {"machine": env.machine(), "px": a.px, "nfe_per_s": rows, "efficiency": effs, "skipped": skipped,
           "command": "bench/particle_batching.py " + " ".join(sys.argv[1:])}
    ce.save("particle_batching", res)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(6, 4))
        for k, e in effs.items():
            ax.plot(list(e), list(e.values()), "o-", label=k)
        ax.axhline(0.8, ls="--", c="gray")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("particle batch")
        ax.set_ylabel("efficiency vs linear")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(os.path.join(ce.RESULTS, "particle_batching.png"))
    except Exception as e:  # noqa: BLE001
        print("plot skipped:", e)
    print(f"machine: {res['machine']}, {a.px} px")
    for k, r in rows.items():
        print(f"{k}:")
        print("   batch " + " ".join(f"{b:>8}" for b in r if isinstance(b, int)))
        print("   NFE/s " + " ".join(f"{v:>8.1f}" for b, v in r.items() if isinstance(b, int)))
        print("   eff.  " + " ".join(f"{v:>8.2f}" for v in effs[k].values()))
    if skipped:
        print(skipped)
    print("efficiency at batch 8 (target >= 0.8): " + ", ".join(f"{k}: {e.get(8, float('nan')):.2f}"
                                                               for k, e in effs.items()))


if __name__ == "__main__":
    main()
