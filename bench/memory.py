"""Peak memory per method and particle batch: peak RSS on CPU (one subprocess per configuration, so every peak is
its own), peak device memory where a GPU runs it (torch.cuda.max_memory_allocated), and what the memory policy
(search_glue.CoResident) does: how many load calls name the whole group and whether the diffusion model is still
loaded after the search.

    .build/venv/bin/python bench/memory.py [--quick] [--px 256] [--methods rbf svdd smc bon] [--batches 1 4 16]
    .build/venv/bin/python bench/memory.py --smoke   # baseline + RBF at batch auto, 64 px, 24 NFE (seconds; CI)

Baseline row: the same process after loading ComfyUI, the tiny FLUX and the VAE, before searching. Prints the
table last; writes bench/results/memory.json."""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.abspath(__file__)


def child(method, max_batch, px, budget):
    import comfy_env as ce
    import torch
    env = ce.ComfyEnv()
    import comfy.model_management as mm
    reward = env.reward("jpeg")
    base_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    calls, real = [], mm.load_models_gpu

    def counting(models, *a, **k):
        calls.append(len(models))
        return real(models, *a, **k)
    mm.load_models_gpu = counting
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    if method != "none":
        res = env.search_only(method, budget=budget, px=px, reward=reward, max_batch=max_batch)
        nfe = res.nfe
    else:
        nfe = 0
    wall = time.perf_counter() - t0
    loaded = any(lm.model is env.model or getattr(lm.model, "model", None) is env.model.model
                 for lm in mm.current_loaded_models)
    out = {"method": method, "max_batch": max_batch or "auto", "px": px, "nfe": nfe, "seconds": wall,
           "baseline_rss_mb": base_kb / 1024, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "load_calls": len(calls), "group_load_calls": sum(1 for n in calls if n >= 2), "model_still_loaded": loaded,
           "peak_device_mb": torch.cuda.max_memory_allocated() / 2 ** 20 if torch.cuda.is_available() else None}
    print("RESULT " + json.dumps(out))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--smoke", action="store_true", help="baseline + one RBF search (64 px, 24 NFE, batch auto): "
                                                         "checks the script (CI)")
    ap.add_argument("--px", type=int, default=256)
    ap.add_argument("--budget", type=int, default=40)
    ap.add_argument("--methods", nargs="+", default=["rbf", "svdd", "smc", "bon"])
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--child", nargs=4)
    a = ap.parse_args()
    if a.child:
        m, b, px, budget = a.child
        return child(m, int(b), int(px), int(budget))
    if a.quick:
        a.px, a.methods, a.batches, a.budget = 128, ["rbf", "svdd", "bon"], [1, 16], 24
    if a.smoke:
        a.px, a.methods, a.batches, a.budget = 64, ["rbf"], [0], 24
    import comfy_env as ce
    rows = []
    configs = [("none", 0)] + [(m, b) for m in a.methods for b in a.batches]
    for m, b in configs:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        p = subprocess.run([sys.executable, HERE, "--child", m, str(b), str(a.px), str(a.budget)], env=env,
                           capture_output=True, text=True)
        line = [l for l in p.stdout.splitlines() if l.startswith("RESULT ")]
        if p.returncode or not line:
            print(p.stderr[-2000:])
            raise SystemExit(f"child {m} {b} failed")
        rows.append(json.loads(line[-1][7:]))
        print(f"  {m} batch {b}: {rows[-1]['peak_rss_mb']:.0f} MB", flush=True)
    res = {"machine": ce.machine(1), "px": a.px, "budget": a.budget, "rows": rows,
           "command": "bench/memory.py " + " ".join(sys.argv[1:])}
    ce.save("memory", res)
    print(f"machine: {res['machine']}; {a.px} px, budget {a.budget}, JPEG reward, tiny FLUX + TAESD")
    print(f"{'method':<8} {'batch':>5} {'NFE':>4} {'peak RSS MB':>11} {'+ over base':>11} {'loads':>5} "
          f"{'group':>5} {'FLUX loaded':>11}")
    base = rows[0]["peak_rss_mb"]
    for r in rows:
        print(f"{r['method']:<8} {str(r['max_batch']):>5} {r['nfe']:>4} {r['peak_rss_mb']:>11.0f} "
              f"{r['peak_rss_mb'] - base:>11.0f} {r['load_calls']:>5} {r['group_load_calls']:>5} "
              f"{str(r['model_still_loaded']):>11}")
    print("memory policy: the group (FLUX, VAE, reward models) is loaded together once per search; on a CPU load "
          "device ComfyUI never evicts, so per-decode group loads are skipped there (on a GPU every decode names "
          "the group first). Peak RSS grows with the particle batch through the decode activations.")


if __name__ == "__main__":
    main()
