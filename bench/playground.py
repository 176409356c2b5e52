"""Counting accuracy vs NFE on the FlowSearch Playground (the paper's Table 3 / §6.3 in miniature).

    .build/venv/bin/python bench/playground.py            # 100 cases × every method × 50/100/300/500 NFE (hours)
    .build/venv/bin/python bench/playground.py --cases 50 --methods bon,smc --merge other/playground.json
    .build/venv/bin/python bench/playground.py --quick    # 30 cases, 100 NFE + base (≤ 5 min)
    .build/venv/bin/python bench/playground.py --smoke    # 3 cases, seconds (CI)

Each case is a caption ("four red squares and three blue crosses") and a seed. `base` is one plain sample (the
model's own 10-step linear ODE); every method runs the pack's defaults (g = 3s², the method's own options) with the
playground's sampling settings (playground.harness.SETTINGS: linear path, 10 steps, uniform grid) and the Count
Objects Reward (−RSS by the reward counter). Metrics per method and budget: exact-count
accuracy by the reward counter (acc) and by the stricter held-out counter (acc_heldout), RSS, NFE used, seconds,
with standard errors over cases, and CPU time per NFE against BoN's. Writes output/bench/playground.json, .png and
.md (and playground.partial.json after every finished cell, so a long run that is stopped keeps what it did);
--merge adds the methods of earlier runs over the same cases to the table."""
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
# label → (method, options, sde); the pack's defaults, as the FlowSearch presets run them, then the issue-12 methods
METHODS = {"bon": ("bon", {}, True), "smc": ("smc", {}, True), "svdd": ("svdd", {}, True),
           "code": ("code", {}, True), "sop": ("sop", {}, True), "rbf": ("rbf", {}, True),
           "psp": ("psp", {}, True),   # progressive seed pruning (after the paper; issue 12)
           "smc_funnel": ("smc", {"particle_schedule": "funnel"}, True),
           "smc_tempered": ("smc", {"temperature_schedule": "linear"}, True),
           "smc_systematic": ("smc", {"resampling": "systematic"}, True),
           "smc_adaptive": ("smc", {"target_ess": 0.2}, True),   # β per step from the ESS target (scale-free)
           "smc_ramp": ("smc", {"particle_schedule": "ramp"}, True),   # population grows n → 3n
           "rbf_code": ("rbf", {"init_noises": "code"}, True),   # the official code's 25 initial noises
           "rbf_threshold": ("rbf_threshold", {"tau": 0.0}, True),   # leave a level once a draw has RSS 0
           "rbf_adaptive": ("rbf_adaptive", {}, True)}
STEPS = SETTINGS["steps"]
REFERENCE = "smc"   # the best of the paper's methods here: the later methods are compared with it case by case


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
    out["acc_cases"] = [r["acc"] for r in rows]   # per case, in case order: for paired comparisons
    return out


def paired(a, b):
    """Mean and standard error of the per-case difference a − b (the same cases, so the paired s.e.)."""
    d = np.array(a, float) - np.array(b, float)
    return float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else 0.0


def evaluate(pg, case_list, methods, budgets, log=print, on_update=None):
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
                t, c = time.perf_counter(), time.process_time()
                res, m = run_method(pg, case, label, budget)
                rows.append({**m, "nfe_used": res.nfe, "seconds": time.perf_counter() - t,
                             "cpu_seconds": time.process_time() - c})
            result["methods"][label][str(budget)] = summarise(rows)
            log(f"{label}@{budget}: {result['methods'][label][str(budget)]}")
            if on_update is not None:
                on_update(result)   # a long run leaves its finished cells on disk
    return result


def _cells(result, budgets, fmt):
    return [(label, ["" if per.get(str(n)) is None else fmt(label, n, per[str(n)]) for n in budgets])
            for label, per in result["methods"].items()]


def _per_nfe(m):
    """CPU seconds per NFE (process time: robust to other load on a shared machine; wall time if not recorded)."""
    return m.get("cpu_seconds", m["seconds"]) / max(m["nfe_used"], 1)


def table(result, command):
    """Three markdown tables: accuracy (held-out), mean reward −RSS, wall time per NFE against BoN's."""
    budgets = sorted({int(b) for m in result["methods"].values() for b in m})
    b = result["base"]
    head = ["| method | " + " | ".join(f"{n} NFE" for n in budgets) + " |", "|---|" + "---|" * len(budgets)]
    lines = [f"Playground counting benchmark: {result['n_cases']} cases (caption × seed); exact-count accuracy by "
             "the reward counter, held-out accuracy in brackets, ± one standard error over cases.", "",
             f"`{command}`", "", *head,
             f"| base (1 plain sample, 10 NFE) | {b['acc']:.2f} ± {b['acc_se']:.2f} ({b['acc_heldout']:.2f}) |"
             + " |" * (len(budgets) - 1)]
    for label, cells in _cells(result, budgets, lambda _l, _n, m: f"{m['acc']:.2f} ± {m['acc_se']:.2f} "
                                                                    f"({m['acc_heldout']:.2f})"):
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "Mean reward −RSS (reward counter; 0 = every count right) ± one standard error:", "", *head]
    for label, cells in _cells(result, budgets, lambda _l, _n, m: f"{0.0 - m['rss']:.2f} ± {m['rss_se']:.2f}"):
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    bon = result["methods"].get("bon", {})

    def speed(_label, n, m):
        ref = bon.get(str(n))
        ratio = f" ({_per_nfe(m) / _per_nfe(ref):.1f}× BoN)" if ref else ""
        return f"{1000 * _per_nfe(m):.1f} ms{ratio}"
    lines += ["", "Time per NFE (CPU time of search + reward + judging) and its ratio to BoN's at the same budget:",
              "", *head]
    for label, cells in _cells(result, budgets, speed):
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    ref = result["methods"].get(REFERENCE, {})

    def diff(label, n, m):
        r = ref.get(str(n))
        if label == REFERENCE or r is None or "acc_cases" not in m or "acc_cases" not in r:
            return ""
        d, se = paired(m["acc_cases"], r["acc_cases"])
        return f"{d:+.2f} ± {se:.2f}" + (" *" if abs(d) > 2 * se else "")
    if ref:
        lines += ["", f"Accuracy minus {REFERENCE}'s on the same cases ± the paired standard error (* = more than two "
                      "standard errors from 0):", "", *head]
        for label, cells in _cells(result, budgets, diff):
            if label != REFERENCE:
                lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


PAPER = ("bon", "smc", "svdd", "code", "sop", "rbf")   # the paper's methods; the others came after it (issue 12)


def plot(result, path):
    """Accuracy vs NFE: the paper's methods on the left; the later methods on the right, with SMC and RBF again
    (dashed) as the references they are judged against. One panel when only one kind was run."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    labels = list(result["methods"])
    panels = [[m for m in labels if m in PAPER], [m for m in labels if m not in PAPER]]
    panels = [p for p in panels if p]
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.2), dpi=100, squeeze=False)
    colours = [c for j, c in enumerate(plt.get_cmap("tab10").colors) if j != 7]   # grey is for the references
    for i, (ax, panel) in enumerate(zip(axes[0], panels)):
        refs = [m for m in ("smc", "rbf") if m in labels] if i else []
        for j, label in enumerate(refs + panel):
            per = result["methods"][label]
            xs = sorted(int(b) for b in per)
            ax.errorbar(xs, [per[str(x)]["acc"] for x in xs], yerr=[per[str(x)]["acc_se"] for x in xs],
                        marker="o", ms=4, capsize=3, label=label + (" (reference)" if label in refs else ""),
                        ls="--" if label in refs else "-",
                        color="0.55" if label in refs else colours[(j - len(refs)) % len(colours)])
        ax.axhline(result["base"]["acc"], color="k", ls=":", lw=1, label="base (1 sample)")
        ax.set_xlabel("NFE budget")
        ax.set_ylabel("exact-count accuracy (± s.e.)")
        ax.set_title(("the paper's methods" if panel[0] in PAPER else "after the paper") +
                     f" ({result['n_cases']} cases)")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle("FlowSearch Playground: counting accuracy vs NFE", fontsize=11)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="30 cases at 100 NFE (≤ 5 min on 2 cores)")
    mode.add_argument("--smoke", action="store_true", help="3 cases at 50 NFE, four methods (seconds; CI)")
    p.add_argument("--cases", type=int, default=None)
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--budgets", default=None)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=OUT)
    p.add_argument("--merge", action="append", default=[],
                   help="playground.json of an earlier run with the same cases: its methods are added to the table")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    n = a.cases or (3 if a.smoke else 30 if a.quick else 100)
    budgets = [int(b) for b in a.budgets.split(",")] if a.budgets else [50] if a.smoke else [100] if a.quick \
        else list(BUDGETS)
    methods = ["bon", "smc", "svdd", "rbf"] if a.smoke and a.methods == ",".join(METHODS) else \
        [m for m in a.methods.split(",") if m]   # --methods "" with --merge: only the base row is run
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        p.error(f"unknown method label(s) {', '.join(unknown)}; use labels of {', '.join(METHODS)}")
    t0 = time.time()
    pg = Playground()
    os.makedirs(a.out, exist_ok=True)
    partial = os.path.join(a.out, "playground.partial.json")

    def save(res):
        with open(partial, "w") as f:
            json.dump(res, f, indent=1)
    result = evaluate(pg, cases(n), methods, budgets, on_update=save)
    for path in a.merge:
        with open(path) as f:
            old = json.load(f)
        if old["n_cases"] != n:
            p.error(f"--merge {path}: it has {old['n_cases']} cases, this run {n}; merge runs of the same cases")
        for label, per in old["methods"].items():
            result["methods"].setdefault(label, {}).update({b: v for b, v in per.items()
                                                            if b not in result["methods"].get(label, {})})
    result["seconds_total"] = round(time.time() - t0, 1)
    command = "python bench/playground.py" + "".join(f" {x}" for x in (argv if argv is not None else sys.argv[1:]))
    result["command"] = command
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
