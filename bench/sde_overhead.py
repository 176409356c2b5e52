"""Per-step time of the FlowSearch SDE sampler vs ComfyUI's `euler` at equal steps on the tiny FLUX.

    .build/venv/bin/python bench/sde_overhead.py [--repeats 9] [--sizes 64 512]
    .build/venv/bin/python bench/sde_overhead.py --smoke    # 1 repeat, 4 steps, 64 px (seconds; CI)
Both run through comfy.sample.sample_custom on the same model, sigmas and noise. Reported: the median wall time
per step (ours / euler), and — robust to the model's own run-to-run variance on a shared CPU — the sampler's
time outside the model call per step, folded into `ratio_outside_model` = (model + ours) / (model + euler).
Target ≤ 1.05. Prints the table last; writes bench/results/sde_overhead.json."""
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
    """Median wall time and median time spent inside the model calls (KSamplerX0Inpaint.__call__)."""
    import comfy.samplers
    orig, inside = comfy.samplers.KSamplerX0Inpaint.__call__, [0.0]

    def model_call(self, *a, **k):
        t = time.perf_counter()
        try:
            return orig(self, *a, **k)
        finally:
            inside[0] += time.perf_counter() - t
    comfy.samplers.KSamplerX0Inpaint.__call__ = model_call
    try:
        fn()  # warm-up
        walls, models = [], []
        for _ in range(repeats):
            inside[0] = 0.0
            t = time.perf_counter()
            fn()
            walls.append(time.perf_counter() - t)
            models.append(inside[0])
    finally:
        comfy.samplers.KSamplerX0Inpaint.__call__ = orig
    return statistics.median(walls), statistics.median(w - m for w, m in zip(walls, models)), statistics.median(models)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 512])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--smoke", action="store_true", help="1 repeat, 4 steps, 64 px: checks the script (CI)")
    a = ap.parse_args()
    if a.smoke:
        a.repeats, a.steps, a.sizes = 1, 4, [64]
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
        (t_ours, out_ours, m_ours), (t_euler, out_euler, m_euler) = timed(run(ours), a.repeats), timed(run(euler), a.repeats)
        model = min(m_ours, m_euler)
        rows.append({"pixels": px, "steps": a.steps, "ours_s_per_step": t_ours / a.steps,
                     "euler_s_per_step": t_euler / a.steps, "ratio": t_ours / t_euler,
                     "ours_outside_model_ms_per_step": 1000 * out_ours / a.steps,
                     "euler_outside_model_ms_per_step": 1000 * out_euler / a.steps,
                     "ratio_outside_model": (model + out_ours) / (model + out_euler)})
    res = {"machine": f"{platform.machine()} {os.cpu_count()} cpu, torch {torch.__version__}, {a.threads} thread(s)",
           "model": "tiny FLUX h64 (2+2 blocks), VP-converted, paper grid", "repeats": a.repeats, "rows": rows,
           "command": "bench/sde_overhead.py " + " ".join(sys.argv[1:])}
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", "sde_overhead.json"), "w") as f:
        json.dump(res, f, indent=1)
    print(f"machine: {res['machine']}")
    print(f"{'px':>5} {'ours s/step':>12} {'euler s/step':>13} {'wall ratio':>10} {'ours ms/step':>13} "
          f"{'euler ms/step':>14} {'ratio':>7}   (ms/step: outside the model call)")
    for r in rows:
        print(f"{r['pixels']:>5} {r['ours_s_per_step']:>12.5f} {r['euler_s_per_step']:>13.5f} {r['ratio']:>10.3f} "
              f"{r['ours_outside_model_ms_per_step']:>13.3f} {r['euler_outside_model_ms_per_step']:>14.3f} "
              f"{r['ratio_outside_model']:>7.3f}")
    print("SDE sampler / euler per-step ratio (target <= 1.05): "
          + ", ".join(f"{r['pixels']}px {r['ratio_outside_model']:.3f} (wall {r['ratio']:.3f})" for r in rows))


if __name__ == "__main__":
    main()
