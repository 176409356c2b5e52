"""Per-step time of the FlowSearch SDE sampler vs ComfyUI's `euler` at equal steps on the tiny FLUX.

    .build/venv/bin/python bench/sde_overhead.py [--repeats 9] [--sizes 64 512]
Both run through comfy.sample.sample_custom on the same model, sigmas and noise; the ratio is the median
time per step (ours / euler). Target ≤ 1.05. Prints the table last; writes bench/results/sde_overhead.json."""
import argparse
import json
import os
import platform
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "scripts")]

import torch  # noqa: E402

from inproc import InProcess  # noqa: E402


def timed(fn, repeats):
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 512])
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    ip = InProcess()
    import comfy.sample
    import comfy.samplers
    sn = ip.node_module("sampling_nodes")
    vp = sn.InterpolantConverter.execute(ip.tiny_flux(), "vp", 0.1, 20.0, 2.0).result[0]
    g = torch.Generator().manual_seed(0)
    cond = [[torch.randn(1, 16, 4096, generator=g) * 0.1, {"pooled_output": torch.randn(1, 768, generator=g) * 0.1}]]
    sigmas = sn.FlowSearchScheduler.execute(vp, a.steps, "paper").result[0]
    ours = sn.FlowSearchSDESampler.execute(True, "square", 3.0).result[0]
    euler = comfy.samplers.sampler_object("euler")
    rows = []
    for px in a.sizes:
        noise = torch.randn(1, 16, px // 8, px // 8, generator=g)

        def run(sampler):
            return lambda: comfy.sample.sample_custom(vp, noise, 1.0, sampler, sigmas, cond, cond, torch.zeros_like(noise),
                                                      seed=0, disable_pbar=True)
        t_ours, t_euler = timed(run(ours), a.repeats), timed(run(euler), a.repeats)
        rows.append({"pixels": px, "steps": a.steps, "ours_s_per_step": t_ours / a.steps,
                     "euler_s_per_step": t_euler / a.steps, "ratio": t_ours / t_euler})
    res = {"machine": f"{platform.machine()} {os.cpu_count()} cpu, torch {torch.__version__}, {a.threads} thread(s)",
           "model": "tiny FLUX h64 (2+2 blocks), VP-converted, paper grid", "repeats": a.repeats, "rows": rows}
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", "sde_overhead.json"), "w") as f:
        json.dump(res, f, indent=1)
    print(f"machine: {res['machine']}")
    print(f"{'px':>5} {'ours s/step':>12} {'euler s/step':>13} {'ratio':>7}")
    for r in rows:
        print(f"{r['pixels']:>5} {r['ours_s_per_step']:>12.5f} {r['euler_s_per_step']:>13.5f} {r['ratio']:>7.3f}")
    print("SDE sampler / euler per-step time ratio (target <= 1.05): "
          + ", ".join(f"{r['pixels']}px {r['ratio']:.3f}" for r in rows))


if __name__ == "__main__":
    main()
