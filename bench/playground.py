"""Counting accuracy vs NFE on the FlowSearch Playground (the paper's Table 3 / §6.3 in miniature).

    .build/venv/bin/python bench/playground.py            # 100 cases × 7 methods × 50/100/300/500 NFE (≤ 60 min)
    .build/venv/bin/python bench/playground.py --quick    # 30 cases, 100 NFE + base (≤ 5 min)
    .build/venv/bin/python bench/playground.py --smoke    # 3 cases, seconds (CI)

Each case is a caption ("four red squares and three blue crosses") and a seed. `base` is one plain sample (the
model's own 10-step linear ODE); every method runs the pack's defaults (g = 3s², the method's own options) with the
playground's sampling settings (playground.harness.SETTINGS: linear path, 10 steps, uniform grid) and the Count
Objects Reward (−RSS by the reward counter). Metrics per method and budget: exact-count
accuracy by the reward counter (acc) and by the stricter held-out counter (acc_heldout), RSS, NFE used, seconds,
with standard errors over cases. Writes output/bench/playground.json, playground.png and playground.md."""
import argparse
import json
import math
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import sampling  # noqa: E402
from playground.harness import SETTINGS, Playground, cases  # noqa: E402

OUT = os.path.join(ROOT, "output", "bench")
BUDGETS = (50, 100, 300, 500)
# label → (method, options, sde); the pack's defaults, as the FlowSearch presets run them
METHODS = {"bon": ("bon", {}, True), "smc": ("smc", {}, True), "svdd": ("svdd", {}, True),
           "code": ("code", {}, True), "sop": ("sop", {}, True), "rbf": ("rbf", {}, True),
           "psp": ("psp", {}, True)}   # progressive seed pruning (after the paper; issue 12)
STEPS = SETTINGS["steps"]


def run_base(pg, case):
    """One plain sample: the model's own deterministic 10-step sampler (Euler, uniform steps, the linear path:
    what ComfyUI's KSampler euler/simple gives)."""
    res = sampling.search(pg.denoiser(case), pg.reward(case), pg.shape, method="bon", nfe_budget=STEPS,
                          steps=STEPS, interpolant="linear", grid="uniform", sde=False, seed=case[1])
    return res, pg.judge(res.sample, case)


def run_method(pg, case, label, budget):
    method, opts, sde = METHODS[label]
    res = sampling.search(pg.denoiser(case), pg.reward(case), pg.shape, method=method, nfe_budget=budget,
                          sde=sde, seed=case[1], **{**SETTINGS, **opts})
    return res, pg.judge(res.sample, case)


def summarise(rows):
    """Mean and standard error over cases of each metric."""
    out = {}
    for key in rows[0]:
        v = np.array([r[key] for r in rows], float)
        out[key] = round(float(v.mean()), 4)
        if key in ("acc", "acc_heldout", "rss"):
            out[f"{key}_se"] = round(float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0, 4)
    return out


def evaluate(pg, case_list, methods, budgets, log=print):
    base_rows = []
    for case in case_list:
        t = time.perf_counter()
        res, m = run_base(pg, case)
        base_rows.append({**m, "nfe_used": res.nfe, "seconds": time.perf_counter() - t})
    result = {"n_cases": len(case_list), "base": summarise(base_rows), "methods": {}}
    log(f"base: {result['base']}")
    for label in methods:
        result["methods"][label] = {}
        for budget in budgets:
            rows = []
            for case in case_list:
                t = time.perf_counter()
                res, m = run_method(pg, case, label, budget)
                rows.append({**m, "nfe_used": res.nfe, "seconds": time.perf_counter() - t})
            result["methods"][label][str(budget)] = summarise(rows)
            log(f"{label}@{budget}: {result['methods'][label][str(budget)]}")
    return result


def table(result, command):
    budgets = sorted({int(b) for m in result["methods"].values() for b in m})
    b = result["base"]
    lines = [f"Playground counting benchmark: {result['n_cases']} cases (caption × seed); exact-count accuracy by "
             "the reward counter, held-out accuracy in brackets, ± one standard error over cases.", "",
             f"`{command}`", "",
             "| method | " + " | ".join(f"{n} NFE" for n in budgets) + " |",
             "|---|" + "---|" * len(budgets),
             f"| base (1 plain sample, 10 NFE) | {b['acc']:.2f} ± {b['acc_se']:.2f} ({b['acc_heldout']:.2f}) |"
             + " |" * (len(budgets) - 1)]
    for label, per in result["methods"].items():
        cells = []
        for n in budgets:
            m = per.get(str(n))
            cells.append("" if m is None else f"{m['acc']:.2f} ± {m['acc_se']:.2f} ({m['acc_heldout']:.2f})")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "RSS (reward counter, lower is better) and wall time per search:", "",
              "| method | " + " | ".join(f"{n} NFE" for n in budgets) + " |", "|---|" + "---|" * len(budgets)]
    for label, per in result["methods"].items():
        cells = [("" if per.get(str(n)) is None else f"{per[str(n)]['rss']:.2f} / {per[str(n)]['seconds']:.2f} s")
                 for n in budgets]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(result, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.5, 4), dpi=100)
    for label, per in result["methods"].items():
        xs = sorted(int(b) for b in per)
        ys = [per[str(x)]["acc"] for x in xs]
        es = [per[str(x)]["acc_se"] for x in xs]
        ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=label)
    ax.axhline(result["base"]["acc"], color="k", ls="--", lw=1, label="base (1 sample)")
    ax.set_xlabel("NFE budget")
    ax.set_ylabel("exact-count accuracy")
    ax.set_title(f"FlowSearch Playground: accuracy vs NFE ({result['n_cases']} cases)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="30 cases at 100 NFE (≤ 5 min on 2 cores)")
    mode.add_argument("--smoke", action="store_true", help="3 cases at 50 NFE, three methods (seconds; CI)")
    p.add_argument("--cases", type=int, default=None)
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--budgets", default=None)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=OUT)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    n = a.cases or (3 if a.smoke else 30 if a.quick else 100)
    budgets = [int(b) for b in a.budgets.split(",")] if a.budgets else [50] if a.smoke else [100] if a.quick \
        else list(BUDGETS)
    methods = ["bon", "svdd", "rbf"] if a.smoke and a.methods == ",".join(METHODS) else a.methods.split(",")
    t0 = time.time()
    pg = Playground()
    result = evaluate(pg, cases(n), methods, budgets)
    result["seconds_total"] = round(time.time() - t0, 1)
    command = "python bench/playground.py" + "".join(f" {x}" for x in (argv if argv is not None else sys.argv[1:]))
    result["command"] = command
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "playground.json"), "w") as f:
        json.dump(result, f, indent=1)
    md = table(result, command)
    with open(os.path.join(a.out, "playground.md"), "w") as f:
        f.write(md)
    plot(result, os.path.join(a.out, "playground.png"))
    print(md)
    print(f"[bench] {result['seconds_total']} s; wrote {os.path.relpath(a.out, ROOT)}/playground.{{json,md,png}}")
    return result


if __name__ == "__main__":
    main()
