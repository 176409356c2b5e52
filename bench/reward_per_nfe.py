"""Reward per NFE at the ComfyUI level: the FlowSearch node on the tiny FLUX (64 px, VP, 10 steps) with a
weight-free reward, per method and NFE budget; mean ± s.e. over seeds of the reward of the returned image.

    .build/venv/bin/python bench/reward_per_nfe.py            # budgets 50 100 300 500 1000, 3 seeds (~25 min)
    .build/venv/bin/python bench/reward_per_nfe.py --quick    # budgets 50 100 200, 2 seeds (~3 min)
    .build/venv/bin/python bench/reward_per_nfe.py --smoke    # budget 50, 1 seed (seconds; CI)

Reward: brightness-maximize (mean Rec.709 luma, in [0, 1]; --reward jpeg for JPEG compressibility). Random-weight
models: the curves show the search machinery at work, not image quality. Prints the table last; writes
bench/results/reward_per_nfe.json and .png."""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import comfy_env as ce  # noqa: E402

METHODS = ("bon", "noise_search", "sop", "smc", "svdd", "code", "rbf")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--smoke", action="store_true", help="budget 50 (SoP needs 42), 1 seed, every method: checks "
                                                         "the script (CI)")
    ap.add_argument("--budgets", type=int, nargs="+", default=[50, 100, 300, 500, 1000])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--reward", default="brightness", choices=["brightness", "jpeg"])
    ap.add_argument("--px", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    if a.quick:
        a.budgets, a.seeds = [50, 100, 200], 2
    if a.smoke:
        a.budgets, a.seeds = [50], 1
    env = ce.ComfyEnv(threads=a.threads)
    reward = env.reward(a.reward)
    table, t0 = {}, time.perf_counter()
    for m in a.methods:
        table[m] = {}
        for b in a.budgets:
            rs, nfes = [], []
            for seed in range(a.seeds):
                rep = env.flowsearch(m, budget=b, px=a.px, reward=reward, seed=seed)
                rs.append(rep["best_reward"])
                nfes.append(rep["nfe"])
            mean = sum(rs) / len(rs)
            se = (sum((r - mean) ** 2 for r in rs) / max(len(rs) - 1, 1)) ** 0.5 / len(rs) ** 0.5
            table[m][b] = {"mean": mean, "se": se, "nfe_mean": sum(nfes) / len(nfes), "rewards": rs}
        print(f"  {m} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    res = {"machine": env.machine(), "reward": a.reward, "px": a.px, "seeds": a.seeds, "budgets": a.budgets,
           "table": table, "seconds": time.perf_counter() - t0,
           "command": "bench/reward_per_nfe.py " + " ".join(sys.argv[1:])}
    ce.save("reward_per_nfe", res)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for m, row in table.items():
            ax.errorbar(list(row), [v["mean"] for v in row.values()], [v["se"] for v in row.values()], marker="o",
                        capsize=2, label=m)
        ax.set_xscale("log")
        ax.set_xlabel("NFE budget")
        ax.set_ylabel(f"{a.reward} reward of the returned image")
        ax.set_title(f"FlowSearch node, tiny FLUX {a.px} px ({a.seeds} seeds)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(ce.RESULTS, "reward_per_nfe.png"))
    except Exception as e:  # noqa: BLE001
        print("plot skipped:", e)
    print(f"machine: {res['machine']}; reward {a.reward}, {a.px} px, {a.seeds} seeds, {res['seconds']:.0f} s")
    print(f"{'method':<14}" + "".join(f"{b:>16}" for b in a.budgets))
    for m, row in table.items():
        print(f"{m:<14}" + "".join(f"{v['mean']:>10.4f}±{v['se']:.3f}" for v in row.values()))
    best = {b: max(table, key=lambda m: table[m][b]["mean"]) for b in a.budgets}
    print("best method per budget: " + ", ".join(f"{b}: {m}" for b, m in best.items()))


if __name__ == "__main__":
    main()
