"""Per NFE: time in the model forward, the VAE decode and the reward, and the options that cut decode + reward,
each with its reward cost at equal NFE (tiny FLUX in ComfyUI; analytic benchmark where the option applies).

    .build/venv/bin/python bench/decode_reward_share.py [--quick] [--sizes 64 256] [--seeds 3]
    .build/venv/bin/python bench/decode_reward_share.py --smoke   # 64 px, 1 seed, tiny budgets (seconds; CI)

Rows (RBF, JPEG reward, tiny FLUX h64 + 16-channel TAESD, VP, 10 steps):
  before        max_batch=1, contiguous decodes, a memory-policy load per decode: the official code's cost profile
                (one batch-1 decode per NFE; paper reference 0.032 s/NFE at 64 px, 0.30 s/NFE at 256 px, 2 threads)
  after         the batched path (max_batch auto) with channels-last CPU decodes (default now)
  rr=<px>       + {"reward_resolution": px}: decode the reward's images from a downsampled latent
Reward reached = the reward of the node's full-resolution best image (mean over seeds), so a cheaper decode is
charged for any ranking error it causes. Also: decode ms/image at batch 1-8 (does batching decodes pay on this
machine?) and "score every k-th level" = CoDe (block k) vs SVDD (k = 1) at equal NFE on the analytic benchmark
and on the tiny model (the blockwise methods already skip decode + reward for unscored levels).
Prints the tables last; writes bench/results/decode_reward_share.json."""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import comfy_env as ce  # noqa: E402
import torch  # noqa: E402


def search_row(env, label, px, budget, seeds, max_batch, options, before, reward):
    per, rewards = [], []
    ctx = ce.before_fixes(env.glue) if before else ce.contextlib.nullcontext()
    with ctx:
        for seed in seeds:
            with env.timers(reward) as t:
                t0 = time.perf_counter()
                latent = {"samples": torch.zeros(1, 16, px // 8, px // 8)}
                out = env.sn.FlowSearch.execute(env.model, env.cond, latent, env.vae, reward, seed, "RBF (paper)", 10,
                                                "vp", budget, "", max_batch, 0, 0.0, ce.json.dumps(options))
                wall = time.perf_counter() - t0
            # the node's two final decodes (best image, candidates) are per run, not per NFE: take them out
            n_final = 1 + out.result[2].shape[0]
            rep = ce.json.loads(out.result[3])
            nfe = rep["nfe"]
            final_dec = t.decode.s * n_final / max(t.decode.rows, 1)
            per.append({"s_per_nfe": (wall - final_dec) / nfe, "forward": t.forward.s / nfe,
                        "decode": (t.decode.s - final_dec) / nfe, "reward": t.reward.s / nfe})
            rewards.append(float(reward(out.result[0])[0]))  # full-resolution reward of the returned image
    med = {k: ce.median([p[k] for p in per]) for k in per[0]}
    return {"label": label, "px": px, "budget": budget, "max_batch": max_batch or "auto", "options": options,
            **med, "reward_mean": sum(rewards) / len(rewards), "rewards": rewards,
            "decode_share": med["decode"] / med["s_per_nfe"], "reward_share": med["reward"] / med["s_per_nfe"],
            "forward_share": med["forward"] / med["s_per_nfe"]}


def decode_batching(env, px, batches, reps=3):
    out = {}
    for b in batches:
        z = torch.randn(b, 16, px // 8, px // 8).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            env.vae.decode(z)
            ts = []
            for _ in range(reps):
                t0 = time.perf_counter()
                env.vae.decode(z)
                ts.append(time.perf_counter() - t0)
        out[b] = 1000 * ce.median(ts) / b
    return out


def score_every_analytic(budget, seeds):
    import sampling
    from bench.search_problems import RareModeProblem
    prob = RareModeProblem()
    rows = {}
    for k in (1, 2, 5):
        rs, scored = [], []
        for seed in seeds:
            calls = [0]

            def reward(x0):
                calls[0] += x0.shape[0]
                return prob.reward(x0)
            method, opts = ("svdd", {}) if k == 1 else ("code", {"block": k})
            res = sampling.search(prob.denoise, reward, prob.shape, method=method, nfe_budget=budget, seed=seed, **opts)
            rs.append(res.reward)
            scored.append(calls[0] / res.nfe)
        rows[k] = {"reward_mean": sum(rs) / len(rs), "scored_per_nfe": sum(scored) / len(scored)}
    return rows


def score_every_tiny(env, px, budget, seeds, reward):
    rows = {}
    for k in (1, 2, 5):
        rs, per = [], []
        for seed in seeds:
            preset, opts = ("SVDD", {}) if k == 1 else ("CoDe", {"block": k})
            with env.timers(reward):
                t0 = time.perf_counter()
                latent = {"samples": torch.zeros(1, 16, px // 8, px // 8)}
                out = env.sn.FlowSearch.execute(env.model, env.cond, latent, env.vae, reward, seed, preset, 10, "vp",
                                                budget, "", 0, 0, 0.0, ce.json.dumps(opts))
                wall = time.perf_counter() - t0
            nfe = ce.json.loads(out.result[3])["nfe"]
            per.append(wall / nfe)
            rs.append(float(reward(out.result[0])[0]))
        rows[k] = {"reward_mean": sum(rs) / len(rs), "s_per_nfe": ce.median(per)}
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="2 seeds, smaller budgets")
    ap.add_argument("--smoke", action="store_true", help="64 px, 1 seed, 20-NFE searches, one reward_resolution: "
                                                         "checks the script (CI)")
    a = ap.parse_args()
    if a.quick:
        a.seeds = 2
    if a.smoke:
        a.seeds, a.sizes = 1, [64]
    env = ce.ComfyEnv(threads=a.threads)
    reward = env.reward("jpeg")
    seeds = range(a.seeds)
    rows = []
    for px in a.sizes:
        budget = 20 if a.smoke else {64: 60 if a.quick else 100, 256: 24 if a.quick else 40}.get(px, 24)
        rows.append(search_row(env, "before (batch 1, paper-like)", px, budget, seeds, 1, {}, True, reward))
        rows.append(search_row(env, "after (batched, channels-last)", px, budget, seeds, 0, {}, False, reward))
        for rr in (px // 2,) if a.smoke else (px // 2, px // 4):
            rows.append(search_row(env, f"after + reward_resolution={rr}", px, budget, seeds, 0,
                                   {"reward_resolution": rr}, False, reward))
        print(f"  {px}px done", flush=True)
    batching = {px: decode_batching(env, px, (1, 2) if a.smoke else (1, 2, 4, 8) if px <= 64 else (1, 2, 4),
                                    reps=1 if a.smoke else 3) for px in a.sizes}
    se_budget = 50 if a.smoke else 100 if a.quick else 300
    analytic = score_every_analytic(se_budget, range(2 if a.smoke else 8 if a.quick else 32))
    tiny_budget = 30 if a.smoke else 100 if a.quick else 200
    tiny = score_every_tiny(env, 64, tiny_budget, seeds, env.reward("brightness"))
    res = {"machine": env.machine(), "rows": rows, "decode_ms_per_image_by_batch": batching,
           "score_every_analytic": {"budget": se_budget, "rows": analytic},
           "score_every_tiny": {"budget": tiny_budget, "reward": "brightness", "rows": tiny},
           "paper_reference_s_per_nfe": {"64": 0.032, "256": 0.30, "threads": 2},
           "command": "bench/decode_reward_share.py " + " ".join(sys.argv[1:])}
    ce.save("decode_reward_share", res)
    print(f"machine: {res['machine']}")
    print(f"{'px':>4} {'row':<34} {'s/NFE':>8} {'fwd%':>5} {'dec%':>5} {'rew%':>5} {'speed-up':>8} {'reward':>8}")
    base = {}
    for r in rows:
        base.setdefault(r["px"], r["s_per_nfe"])
        print(f"{r['px']:>4} {r['label']:<34} {r['s_per_nfe']:>8.4f} {100 * r['forward_share']:>5.1f} "
              f"{100 * r['decode_share']:>5.1f} {100 * r['reward_share']:>5.1f} {base[r['px']] / r['s_per_nfe']:>8.2f} "
              f"{r['reward_mean']:>8.3f}")
    print("decode ms/image by batch: " + "; ".join(f"{px}px " + ", ".join(f"b{b} {v:.1f}" for b, v in d.items())
                                                   for px, d in batching.items()))
    print("score every k-th level (CoDe block k; k=1 is SVDD), analytic: " + ", ".join(
        f"k={k} reward {v['reward_mean']:.3f} scored/NFE {v['scored_per_nfe']:.2f}" for k, v in analytic.items()))
    print("  tiny FLUX 64px brightness: " + ", ".join(
        f"k={k} reward {v['reward_mean']:.3f} {v['s_per_nfe']:.4f} s/NFE" for k, v in tiny.items()))
    print("paper reference (official code, 2 threads): 0.032 s/NFE at 64 px, 0.30 s/NFE at 256 px")
    print("decode-share speed-up (before -> after): " + ", ".join(
        f"{r['px']}px {r['label'].split(' (')[0]} x{base[r['px']] / r['s_per_nfe']:.2f}" for r in rows
        if not r["label"].startswith("before")))


if __name__ == "__main__":
    main()
