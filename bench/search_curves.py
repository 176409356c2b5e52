"""Reward vs NFE for every search method on the analytic rare-mode benchmark (bench/search_problems.py).

    .build/venv/bin/python bench/search_curves.py            # 16 seeds, about a minute on 2 cores
    .build/venv/bin/python bench/search_curves.py --quick    # 4 seeds
    .build/venv/bin/python bench/search_curves.py --smoke    # 1 seed, budgets 50 100 500 (seconds; CI)

Writes bench/results/search_curves.json and .png and prints the table last. Every method runs the paper's
sampler (VP interpolant, g = 3s², 10 steps, paper grid) with its App. D settings sized to the budget, except
noise_search (deterministic ODE paths, as in Ma et al.) and SoP (ODE by construction).
"""
import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

import sampling  # noqa: E402
from bench.search_problems import RareModeProblem  # noqa: E402

BUDGETS = (50, 100, 300, 500, 1000)
# label → (method, options, sde). rbf (default) = K0 = ⌊B/20⌋ initial noises per chain + hold at the last level
# (the official code's start and hold rule); "init_noises=code" = the code's fixed K0 = 25; "1 noise, hold" =
# Alg. 2's start; "Alg. 2 literal" also stops at the last level. rbf_threshold / rbf_adaptive: the acceptance rules
# of sampling/search_rbf_variants.py; psp and the SMC schedules / systematic resampling: issue 12.
METHODS = {
    "bon": ("bon", {}, True),
    "noise_search": ("noise_search", {}, False),
    "sop": ("sop", {}, True),
    "smc (β=0.1, paper)": ("smc", {}, True),
    "smc (β=0.003)": ("smc", {"beta": 0.003}, True),
    "svdd": ("svdd", {}, True),
    "code": ("code", {}, True),
    "rbf (default)": ("rbf", {}, True),
    "rbf (1 noise, hold)": ("rbf", {"init_noises": None}, True),
    "rbf (Alg. 2 literal)": ("rbf", {"init_noises": None, "last_level": "stop"}, True),
    "rbf (min_draws=10)": ("rbf", {"min_draws": 10}, True),
    "rbf (init_noises=code)": ("rbf", {"init_noises": "code"}, True),
    "rbf_threshold (τ=0.5)": ("rbf_threshold", {"tau": 0.5}, True),
    "rbf_threshold (q=0.75)": ("rbf_threshold", {"tau": 0.75, "tau_mode": "quantile"}, True),
    "rbf_adaptive (κ=1)": ("rbf_adaptive", {}, True),
    "psp": ("psp", {}, True),
    "smc (funnel)": ("smc", {"particle_schedule": "funnel"}, True),
    "smc (tempered, linear)": ("smc", {"temperature_schedule": "linear"}, True),
    "smc (systematic, ESS 0.5)": ("smc", {"resampling": "systematic", "ess_threshold": 0.5}, True),
    "smc (target_ess=0.2)": ("smc", {"target_ess": 0.2}, True),
}


def run_method(problem, label, budget, seeds):
    method, opts, sde = METHODS[label]
    rs, nfes = [], []
    for seed in seeds:
        res = sampling.search(problem.denoise, problem.reward, problem.shape, method=method, nfe_budget=budget,
                              seed=seed, sde=sde, **opts)
        rs.append(res.reward)
        nfes.append(res.nfe)
    r = torch.tensor(rs, dtype=torch.float64)
    return {"mean": float(r.mean()), "se": float(r.std() / len(r) ** 0.5) if len(r) > 1 else 0.0,
            "nfe_mean": sum(nfes) / len(nfes), "rewards": rs}


def plain_paths(problem, n=2000, steps=10):
    """Along plain VP-SDE paths: mean reward of x0̂ per level, and how often a child's reward beats its parent's
    (the chance that an Alg. 2 draw is accepted when r* is the parent's reward)."""
    x0s = []
    sampling.sample(problem.denoise, torch.randn(n, *problem.shape, generator=torch.Generator().manual_seed(0)),
                    steps=steps, seed=0, callback=lambda ev: x0s.append(problem.reward(ev["denoised"])))
    mean = [float(r.mean()) for r in x0s]
    beats = [float((b > a).double().mean()) for a, b in zip(x0s[:-1], x0s[1:])]
    return {"mean_reward_by_level": mean, "p_child_beats_parent": beats}


def rbf_draws(problem, budget=500, seeds=range(4)):
    """Mean draws per level of default RBF (Alg. 2 acceptance, hold at the last level)."""
    per = {}
    for seed in seeds:
        res = sampling.search(problem.denoise, problem.reward, problem.shape, method="rbf", nfe_budget=budget,
                              seed=seed)
        for e in res.trace:
            if "draws" in e:
                per.setdefault(e["step"], []).append(e["draws"])
    return [sum(v) / len(v) for _, v in sorted(per.items())]


def plot(results, path, budgets=BUDGETS):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 5))
    colors = plt.get_cmap("tab20")
    for i, (label, row) in enumerate(results.items()):
        xs = [int(b) for b in row]
        ys = [row[b]["mean"] for b in row]
        es = [row[b]["se"] for b in row]
        ls = "--" if label.startswith("rbf (") and label != "rbf (default)" else "-"
        ax.errorbar(xs, ys, yerr=es, label=label, linestyle=ls, marker="o", ms=3, capsize=2, color=colors(2 * i % 20
                    + (2 * i // 20)))
    ax.set_xscale("log")
    ax.set_xticks(list(budgets), [str(b) for b in budgets])
    ax.set_xlabel("NFE budget")
    ax.set_ylabel("mean reward (± s.e.)")
    ax.set_title("Search on the analytic rare-mode flow (VP-SDE, 10 steps)")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4 seeds instead of 16")
    ap.add_argument("--smoke", action="store_true", help="1 seed, budgets 50 100 500, fewer plain paths: checks the "
                                                         "script (CI)")
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    seeds = range(args.seeds or (1 if args.smoke else 4 if args.quick else 16))
    budgets = (50, 100, 500) if args.smoke else BUDGETS  # 100 and 500: the RBF@100 vs BoN@500 line
    problem = RareModeProblem()
    t0 = time.time()
    results = {label: {str(b): run_method(problem, label, b, seeds) for b in budgets} for label in METHODS}
    rbf100, bon500 = results["rbf (default)"]["100"]["mean"], results["bon"]["500"]["mean"]
    out = {
        "problem": {"name": "RareModeProblem", "dim": problem.dim, "rare_weight": 0.01, "steps": 10,
                    "interpolant": "vp", "grid": "paper", "diffusion": "3s^2"},
        "seeds": len(seeds), "budgets": list(budgets), "smoke": args.smoke, "results": results,
        "rbf100_reaches_bon500": rbf100 >= bon500, "rbf100": rbf100, "bon500": bon500,
        "plain_paths": plain_paths(problem, n=200 if args.smoke else 2000),
        "rbf_draws_per_level_at_500": rbf_draws(problem, seeds=range(1) if args.smoke else range(4)),
        "seconds": None,
    }
    out["seconds"] = round(time.time() - t0, 1)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "search_curves.json"), "w") as f:
        json.dump(out, f, indent=1)
    plot(results, os.path.join(args.out, "search_curves.png"), budgets)

    tide = out["plain_paths"]
    print("plain VP-SDE paths, mean reward of x0̂ per level:",
          " ".join(f"{v:.3f}" for v in tide["mean_reward_by_level"]))
    print("P(child's reward > parent's) per transition:", " ".join(f"{v:.2f}" for v in tide["p_child_beats_parent"]))
    print("RBF (default) mean draws per level at 500 NFE:",
          " ".join(f"{v:.1f}" for v in out["rbf_draws_per_level_at_500"]))
    verdict = "reaches" if rbf100 >= bon500 else "does not reach"
    print(f"RBF@100 = {rbf100:.3f} vs BoN@500 = {bon500:.3f}: RBF@100 {verdict} BoN@500 "
          f"({len(seeds)} seeds, {out['seconds']} s; wrote {args.out}/search_curves.json/.png)")
    print()
    w = max(len(k) for k in METHODS)
    print(f"{'method':<{w}} " + " ".join(f"{b:>13}" for b in budgets))
    for label, row in results.items():
        print(f"{label:<{w}} " + " ".join(f"{row[str(b)]['mean']:>6.3f} ±{row[str(b)]['se']:.3f}" for b in budgets))
    return out


if __name__ == "__main__":
    main()
