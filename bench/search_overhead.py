"""Search overhead: wall time of a FlowSearch search minus the time in model calls, VAE decodes and reward calls,
as a fraction of a plain ComfyUI sampler (euler via comfy.sample.sample_custom) at equal NFE, tiny FLUX.

    .build/venv/bin/python bench/search_overhead.py [--repeats 5] [--sizes 64 512] [--before]
    .build/venv/bin/python bench/search_overhead.py --smoke   # 1 repeat, 64 px, 20 NFE (seconds; CI)

The search runs exactly as the FlowSearch node runs it (glue.sample_search as a KSAMPLER through the guider; the
node's one-off final decodes of the best image and the candidates are left out). Timers wrap
  model call = comfy.samplers.KSamplerX0Inpaint.__call__ (the callable euler calls too: ComfyUI's own cond/
               apply_model wrapping is a cost of the plain sampler as well),
  decode     = comfy.sd.VAE.decode, reward = Reward.__call__.
overhead_ratio = median over repeats of (search wall − model calls − decodes − rewards) / euler wall at the
same number of model evaluations (batch 1); extra_ratio subtracts euler's own non-model time (the guider's
set-up, which a search pays once too). Also reported: the same with only diffusion_model.forward taken out.
Target ≤ 0.05. --before emulates the glue before the performance pass. --decompose (also part of --smoke) splits the 64 px
batch-1 overhead: the same search with the VAE decode replaced by zeros, and with the model call, decode and reward all
replaced by trivial functions (what is left then is the search and the glue alone). Prints the table last; writes
bench/results/search_overhead[_before].json."""
import argparse
import contextlib
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import comfy_env as ce  # noqa: E402


def one(env, px, budget, steps, max_batch, reward, method):
    with env.timers(reward) as t:
        undo = ce.model_call_timer(t)
        try:
            t0 = time.perf_counter()
            res = env.search_only(method, budget=budget, px=px, reward=reward, max_batch=max_batch, steps=steps)
            wall = time.perf_counter() - t0
        finally:
            undo()
    with env.timers() as te:
        undo = ce.model_call_timer(te)
        try:
            t0 = time.perf_counter()
            env.euler(res.nfe, px=px)
            euler = time.perf_counter() - t0
        finally:
            undo()
    euler_other = euler - te.model_call.s  # the plain sampler's own set-up and loop (both pay the set-up)
    f, d, r, m = t.forward.s, t.decode.s, t.reward.s, t.model_call.s
    return {"nfe": res.nfe, "wall": wall, "euler": euler, "model_call": m, "forward": f, "decode": d, "reward": r,
            "calls": t.model_call.calls, "overhead": wall - m - d - r, "overhead_vs_forward": wall - f - d - r,
            "euler_other": euler_other, "extra": wall - m - d - r - euler_other}


@contextlib.contextmanager
def stubbed(reward, model=False):
    """VAE.decode → zeros of the decoded shape; with model=True also the model call (x ↦ x/2) and the reward (0)."""
    import comfy.samplers
    import comfy.sd
    import torch
    saved = [(comfy.sd.VAE, "decode", comfy.sd.VAE.decode)]
    comfy.sd.VAE.decode = lambda self, z, *a, **k: torch.zeros(z.shape[0], z.shape[-2] * 8, z.shape[-1] * 8, 3)
    if model:
        cls, call = comfy.samplers.KSamplerX0Inpaint, type(reward)
        saved += [(cls, "__call__", cls.__call__), (call, "__call__", call.__call__)]
        cls.__call__ = lambda self, x, sigma, **k: x * 0.5
        call.__call__ = lambda self, img, prompt=None: torch.zeros(img.shape[0], dtype=torch.float64)
    try:
        yield
    finally:
        for obj, name, fn in saved:
            setattr(obj, name, fn)


def decompose(env, reward, method, repeats, budget=100, steps=10):
    """Other time per NFE (wall − model calls − decodes − rewards) of the 64 px batch-1 search: real, with a zero
    decode, and with model, decode and reward all trivial; and euler's time per step for scale."""
    out = {}
    for label, ctx in (("real", contextlib.nullcontext()), ("zero decode", stubbed(reward)),
                       ("model, decode and reward trivial", stubbed(reward, model=True))):
        with ctx:
            one(env, 64, budget, steps, 1, reward, method)
            runs = [one(env, 64, budget, steps, 1, reward, method) for _ in range(repeats)]
        out[label] = {"other_ms_per_nfe": 1000 * ce.median([r["overhead"] / r["nfe"] for r in runs])}
        if label == "real":   # the stubs replace euler's model too
            out[label]["euler_ms_per_step"] = 1000 * ce.median([r["euler"] / r["nfe"] for r in runs])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 512])
    ap.add_argument("--method", default="rbf")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--before", action="store_true", help="emulate the glue before the performance pass")
    ap.add_argument("--quick", action="store_true", help="3 repeats, 64 px and a 10-NFE 512 px run")
    ap.add_argument("--smoke", action="store_true", help="1 repeat, 64 px, 20 NFE in 5 steps: checks the script (CI)")
    ap.add_argument("--decompose", action="store_true", help="also split the 64 px batch-1 overhead (see above)")
    a = ap.parse_args()
    if a.quick:
        a.repeats = 3
    if a.smoke:
        a.repeats, a.sizes = 1, [64]
    env = ce.ComfyEnv(threads=a.threads)
    reward = env.reward("jpeg")
    # (px, budget, steps): small budgets at 512 px, where one decode of the tiny VAE takes ~2 s on one core
    plans = {64: (20, 5) if a.smoke else (100, 10), 256: (24, 10), 512: (10 if a.quick else 12, 5)}
    rows = []
    ctx = ce.before_fixes(env.glue) if a.before else ce.contextlib.nullcontext()
    with ctx:
        for px in a.sizes:
            budget, steps = plans.get(px, (24, 10))
            reps = a.repeats if px <= 64 else max(1, min(a.repeats, 2 if a.quick else 3))
            for mb in (1, 0):
                one(env, px, budget, steps, mb, reward, a.method)  # warm-up
                runs = [one(env, px, budget, steps, mb, reward, a.method) for _ in range(reps)]
                med = {k: ce.median([r[k] for r in runs]) for k in runs[0]}
                med.update(px=px, max_batch=mb or "auto", repeats=reps, budget=budget, steps=steps,
                           overhead_ratio=ce.median([r["overhead"] / r["euler"] for r in runs]),
                           extra_ratio=ce.median([r["extra"] / r["euler"] for r in runs]),
                           overhead_ratio_vs_forward=ce.median([r["overhead_vs_forward"] / r["euler"] for r in runs]))
                rows.append(med)
                print(f"  {px}px max_batch={mb or 'auto'}: {med['overhead_ratio']:.3f}", flush=True)
    name = "search_overhead" + ("_before" if a.before else "")
    res = {"machine": env.machine(), "method": a.method, "reward": "jpeg", "before": a.before, "rows": rows,
           "command": "bench/search_overhead.py " + " ".join(sys.argv[1:])}
    if a.decompose or a.smoke:   # the smoke run checks this part too
        res["decompose"] = decompose(env, reward, a.method, a.repeats, *plans[64])
    ce.save(name, res)
    print(f"machine: {res['machine']}")
    print(f"{'px':>4} {'batch':>5} {'NFE':>4} {'calls':>5} {'wall s':>8} {'model':>7} {'decode':>7} {'reward':>7} "
          f"{'other':>7} {'euler s':>8} {'e.other':>7} {'ratio':>6} {'extra':>6} {'ratio*':>6}")
    for r in rows:
        print(f"{r['px']:>4} {str(r['max_batch']):>5} {r['nfe']:>4} {r['calls']:>5.0f} {r['wall']:>8.3f} "
              f"{r['model_call']:>7.3f} {r['decode']:>7.3f} {r['reward']:>7.3f} {r['overhead']:>7.3f} "
              f"{r['euler']:>8.3f} {r['euler_other']:>7.3f} {r['overhead_ratio']:>6.3f} {r['extra_ratio']:>6.3f} "
              f"{r['overhead_ratio_vs_forward']:>6.3f}")
    print("ratio = (search wall - model calls - decodes - rewards) / euler wall at equal NFE (target <= 0.05); "
          "extra = the same minus the plain sampler's own non-model time (set-up both pay); "
          "ratio* takes out only diffusion_model.forward")
    dec = res.get("decompose", {})
    for label, d in dec.items():
        print(f"  decompose, 64 px batch 1, {label}: other {d['other_ms_per_nfe']:.3f} ms/NFE = "
              f"{d['other_ms_per_nfe'] / dec['real']['euler_ms_per_step']:.3f} of a real euler step "
              f"({dec['real']['euler_ms_per_step']:.2f} ms)")
    print(f"search overhead ratio{' (before)' if a.before else ''} (extra over euler's own): "
          + ", ".join(f"{r['px']}px/batch {r['max_batch']} {r['overhead_ratio']:.3f} ({r['extra_ratio']:.3f})"
                      for r in rows))


if __name__ == "__main__":
    main()
