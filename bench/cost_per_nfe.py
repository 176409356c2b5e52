"""Cost per NFE and final reward: the official code's profile vs ours with "reward_resolution" auto and full (issue 13).

    .build/venv/bin/python bench/cost_per_nfe.py [--seeds 8] [--plans vqascore:tiny-clip-flant5:256:40:10 ...]
    .build/venv/bin/python bench/cost_per_nfe.py --smoke     # 1 seed, three small plans, 10-12 NFE (~45 s; CI)
    .build/venv/bin/python bench/cost_per_nfe.py --plans playground-ae:pickscore:tiny-clip-64:128:100:10 \
        --force-route 1 0 --configs official,forced\ 1,forced\ 0     # what skipping the check would give

Rows per plan ([playground:|playground-ae:]reward kind : tiny reward folder : px : nfe_budget : steps), RBF through the FlowSearch
node, tiny random reward through its real loader. Three worlds:
  tiny        the tiny FLUX h64 + 16-channel random TAESD, one text prompt (the "vp" interpolant);
  playground  the trained playground FLUX + the *learned* TAESD-architecture decoder of its latent
              (playground/train_decoder.py, loaded by the stock comfy.sd.VAE), a three-group caption, the
              playground's linear path. Folder "tiny-clip-<N>" is a tiny random CLIP whose processor works at N px
              (tests/fixtures/tiny_rewards.py clip_at_size), so auto decodes the 128 px pictures at N px.
  playground-ae  the same FLUX and caption with a decoder that costs what FLUX's own does: the exact codec's
              pictures, computed after running the FLUX autoencoder's decoder (its real architecture, random
              weights, through comfy.sd.VAE; output discarded) on the same latent: a *cost stand-in* for
              ae.safetensors. Here "ours auto" adds {"reward_decoder": "taesd"} with the learned decoder written as
              models/vae_approx/taef1_decoder.safetensors (ComfyUI's TAESD class), the pair's cheap decoder, as
              taef1 is for FLUX; the ranking check then measures TAESD against the exact pictures.
  official   the official code's cost profile: one batch-1, full-size, contiguous decode per NFE (max_batch 1,
             "reward_resolution": "full", the memory-policy call before every decode)
  ours auto  the node's defaults (batched, probed CPU layout, "reward_resolution": "auto")
  ours full  the same with "reward_resolution": "full"
s/NFE = (node wall − the node's one-off final decodes of the best image and the candidates) / NFE. Reward = the
reward of the node's returned full-size image (mean over seeds), so a smaller reward decode is charged for any
ranking error it makes. Targets: official / ours-auto s/NFE ≥ 3, and ours-auto's reward within 1 % of ours-full's
(relative to |ours-full|). Prints the table last; writes bench/results/cost_per_nfe.json."""
import argparse
import os
import sys
import tempfile
import time
import types
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import comfy_env as ce  # noqa: E402
import torch  # noqa: E402

PROMPT = "a photo of a red cat"
PLANS = ["vqascore:tiny-clip-flant5:256:40:10", "clip_score:tiny-clip:512:20:5",
         "playground:pickscore:tiny-clip-64:128:100:10", "playground:pickscore:tiny-clip-32:128:100:10"]
PG_CAPTION = "three red squares, two blue crosses and one green square"
# (label, max_batch, options, glue(world) → context the searches run in: None = the node as it is)
CONFIGS = [("official", 1, {"reward_resolution": "full"}, lambda w: ce.before_fixes(w.glue)),
           ("ours auto", 0, {}, None), ("ours full", 0, {"reward_resolution": "full"}, None)]


def timed_decode_shapes(env):
    """Record each VAE decode call's latent size and time (so the node's final full-size decodes can be taken out)."""
    calls = []
    real = env.vae.decode

    def dec(z, *a, **k):
        t = time.perf_counter()
        try:
            return real(z, *a, **k)
        finally:
            calls.append((tuple(z.shape[-2:]), int(z.shape[0]), time.perf_counter() - t))
    return calls, dec


def tiny_world(env):
    return types.SimpleNamespace(name="tiny", model=env.model, cond=env.cond, vae=env.vae, prompt=PROMPT,
                                 interpolant="vp", sn=env.sn, glue=env.glue,
                                 dec=env.ip.node_module("decoder"))


def playground_world(env):
    """The playground FLUX, its caption's conditioning and the learned decoder, as ComfyUI objects."""
    import importlib
    glue = importlib.import_module("comfyui_flowsearch.playground.comfy_glue")
    clip = glue.load_clip()                                   # the Playground Loader's CLIP, as CLIPTextEncode uses it
    return types.SimpleNamespace(name="playground", model=glue.load_model(glue.weights_path(
        "playground_flux.safetensors")), cond=clip.encode_from_tokens_scheduled(clip.tokenize(PG_CAPTION)),
        vae=glue.load_learned_vae(), prompt=PG_CAPTION, interpolant="linear", sn=env.sn, glue=env.glue,
        dec=env.ip.node_module("decoder"))


def playground_ae_world(env, pg, tmp):
    """The playground with the FLUX-AE cost stand-in as its VAE and the learned decoder as ComfyUI's TAESD file."""
    import importlib
    import gpu_bench
    glue = importlib.import_module("comfyui_flowsearch.playground.comfy_glue")
    ae = gpu_bench.flux_vae("cpu")

    class AECostVAE(glue.PlaygroundVAE):
        """The exact codec's pictures at the compute of the FLUX autoencoder's decoder (run, output discarded)."""

        def decode(self, samples_in, *a, **k):
            ae.decode(samples_in)
            return super().decode(samples_in, *a, **k)

    ce.learned_taef1(os.path.join(tmp, "vae_approx"))
    return types.SimpleNamespace(**{**vars(pg), "name": "playground-ae", "vae": AECostVAE(),
                                    "auto_options": {"reward_decoder": "taesd"}})


@ce.contextlib.contextmanager
def forced_route(dec, k):
    """Bench-only experiment: the ranking check still measures every route but then uses route k as if it had passed
    (what the search would return if the check were skipped)."""
    real = dec.RankingCheck._decide

    def decide(self, labels):
        real(self, labels)
        self.choice, self.result = k, {**self.result, "kept": True, "forced": k}
    dec.RankingCheck._decide = decide
    try:
        yield
    finally:
        dec.RankingCheck._decide = real


def reward_folder(tiny, folder, tmp):
    if folder.startswith("tiny-clip-") and folder[10:].isdigit():
        import tiny_rewards
        return tiny_rewards.clip_at_size(int(folder[10:]), tmp)
    return tiny / folder


def run_plan(worlds, rw, tiny, plan, seeds, tmp, configs, preset="RBF (paper)"):
    name = plan.split(":")[0] if plan.startswith("playground") else "tiny"
    env = worlds[name]
    kind, folder, px, budget, steps = plan.split(":")[-5:]
    px, budget, steps = int(px), int(budget), int(steps)
    reward = rw.load_reward(kind, reward_folder(tiny, folder, tmp))
    rows = []
    for label, mb, opts, glue in configs:
        if label == "ours auto" or label.startswith("forced"):
            opts = {**opts, **getattr(env, "auto_options", {})}
        per = []
        if seeds > 1:
            one_search(env, reward, px, budget, steps, 0, mb, opts, glue, preset=preset)  # warm-up (and the layout probe)
        for seed in range(seeds):
            per.append(one_search(env, reward, px, budget, steps, seed, mb, opts, glue, preset=preset))
        rows.append({"plan": plan, "world": name, "options": opts, "reward_kind": kind, "input_size": reward.input_size, "px": px,
                     "budget": budget, "config": label, "s_per_nfe": ce.median([p["s_per_nfe"] for p in per]),
                     "ranking_check": [p["ranking_check"] for p in per],
                     "reward_mean": sum(p["reward"] for p in per) / len(per), "rewards": [p["reward"] for p in per]})
        print(f"  {plan} {label}: {rows[-1]['s_per_nfe']:.4f} s/NFE, reward {rows[-1]['reward_mean']:.6g}",
              flush=True)
    return rows


def one_search(env, reward, px, budget, steps, seed, max_batch, options, glue, *, preset):
    """One node run: s/NFE without the node's final decodes (the last 2 decode calls: best image, candidates).
    glue: None, or world → the context the search runs in (the official profile's glue, a forced route)."""
    calls, dec = timed_decode_shapes(env)
    ctx = glue(env) if glue else ce.contextlib.nullcontext()
    latent = {"samples": torch.zeros(1, 16, px // 8, px // 8)}
    env.vae.decode = dec
    try:
        with ctx:
            t0 = time.perf_counter()
            out = env.sn.FlowSearch.execute(env.model, env.cond, latent, env.vae, reward, seed, preset,
                                            steps, env.interpolant, budget, env.prompt, max_batch, 0, 0.0,
                                            ce.json.dumps(options))
            wall = time.perf_counter() - t0
    finally:
        del env.vae.decode
    rep = ce.json.loads(out.result[3])
    final = sum(c[2] for c in calls[-2:])
    with torch.no_grad():
        r = float(reward(out.result[0], env.prompt)[0])
    return {"s_per_nfe": (wall - final) / rep["nfe"], "nfe": rep["nfe"], "reward": r,
            "ranking_check": rep["searches"][0]["options"].get("reward_ranking_check"),
            "reward_decode_latent": calls[0][0] if len(calls) > 2 else None}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--plans", nargs="+", default=PLANS)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--explicit", type=int, default=0, help="also a row with an explicit reward_resolution of this "
                                                             "many px (the user's call: no ranking check)")
    ap.add_argument("--force-route", type=int, nargs="*", default=[],
                    help="also rows with the ranking check's route K forced (experiment: the reward a skipped check "
                         "would give; routes are the TAESD ones in world playground-ae: 0 = reward size, 1 = full latent)")
    ap.add_argument("--preset", default="RBF (paper)", help="FlowSearch preset (default: the paper's RBF)")
    ap.add_argument("--configs", default="", help="comma-separated config labels to run (default: all)")
    ap.add_argument("--smoke", action="store_true", help="1 seed, 10-12 NFE in 4 steps: 128 px CLIP-FlanT5 (tiny), "
                                                             "64 px PickScore on the playground and playground-ae (CI)")
    a = ap.parse_args()
    if a.smoke:
        a.seeds, a.plans = 1, ["vqascore:tiny-clip-flant5:128:12:4", "playground:pickscore:tiny-clip-64:128:12:4",
                               "playground-ae:pickscore:tiny-clip-64:128:10:4"]
    configs = CONFIGS + ([(f"ours {a.explicit}px", 0, {"reward_resolution": a.explicit}, None)] if a.explicit else [])
    configs += [(f"forced {k}", 0, {}, lambda w, k=k: forced_route(w.dec, k)) for k in a.force_route]
    if a.configs:
        configs = [c for c in configs if c[0] in a.configs.split(",")]
    env = ce.ComfyEnv(threads=a.threads)
    sys.path.insert(0, str(Path(ce.ROOT) / "tests" / "fixtures"))
    import tiny_rewards
    tiny = tiny_rewards.tiny_rewards_dir()
    worlds = {"tiny": tiny_world(env)}
    tmp = tempfile.mkdtemp(prefix="flowsearch_cost_")
    if any(p.startswith("playground") for p in a.plans):
        worlds["playground"] = playground_world(env)
    if any(p.startswith("playground-ae:") for p in a.plans):
        worlds["playground-ae"] = playground_ae_world(env, worlds["playground"], tmp)
    rows = []
    for plan in a.plans:
        rows += run_plan(worlds, env.rw, tiny, plan, a.seeds, tmp, configs, a.preset)
    summary = []
    for plan in a.plans:
        by = {r["config"]: r for r in rows if r["plan"] == plan}
        if not {"official", "ours auto", "ours full"} <= set(by):
            continue
        full = by["ours full"]["reward_mean"]
        summary.append({"plan": plan, "speedup_vs_official": by["official"]["s_per_nfe"] / by["ours auto"]["s_per_nfe"],
                        "speedup_full_vs_official": by["official"]["s_per_nfe"] / by["ours full"]["s_per_nfe"],
                        "reward_gap": (by["ours auto"]["reward_mean"] - full) / (abs(full) or 1.0)})
    attr = env.ip.node_module("decoder").PROBE_ATTR
    probe = {k: getattr(w.vae, attr, {}) for k, w in worlds.items()}
    res = {"machine": env.machine(), "preset": a.preset, "seeds": a.seeds, "rows": rows, "summary": summary,
           "cpu_layout_probe": probe,
           "command": "bench/cost_per_nfe.py " + " ".join(sys.argv[1:])}
    ce.save("cost_per_nfe", res)
    print(f"machine: {res['machine']}; CPU decode layout probe (channels-last chosen?): {probe}")
    print(f"{'plan':>38} {'config':>10} {'s/NFE':>8} {'reward (mean of ' + str(a.seeds) + ')':>20}")
    for r in rows:
        print(f"{r['plan']:>38} {r['config']:>10} {r['s_per_nfe']:>8.4f} {r['reward_mean']:>20.6g}")
    for s in summary:
        print(f"{s['plan']}: official / ours-auto per NFE = {s['speedup_vs_official']:.2f}x (target >= 3; ours-full "
              f"{s['speedup_full_vs_official']:.2f}x); auto reward vs full {100 * s['reward_gap']:+.2f} % "
              f"(target within 1 %)")


if __name__ == "__main__":
    main()
