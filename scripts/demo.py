"""The main job: the FlowSearch Playground, then the shipped FLUX workflows, through a real ComfyUI server.

First the playground (scripts/demo_playground.py): the trained model shipped with the pack, real countable
pictures, base vs Best-of-N vs RBF and an accuracy table. Then, on the bundled tiny random-weight FLUX stand-ins,
each workflow in DEMO_WORKFLOWS is converted from its saved UI format,
swaps in the tiny random-weight stand-ins for the model files and scales the compute knobs to this CPU
(rules: scripts/host.py), runs it, copies the images to output/demo/, writes output/demo/report.{md,json}
and stops the server."""
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import host  # noqa: E402
import demo_playground  # noqa: E402

DEMO_WORKFLOWS = ["starter_schnell_clip", "flux_schnell_vp_sde", "rbf_vqascore", "bon_baseline", "rbf_counting",
                  "rbf_dps_aesthetic"]
OUT = os.path.join(host.ROOT, "output", "demo")

STAND_IN = """NOTE on the FLUX workflows (the playground part above is a real trained model): their models are RANDOM-WEIGHT STAND-INS (a 0.8 M-parameter FLUX, a tiny 16-channel
TAESD-style VAE and tiny random reward models of the real architectures), so the images are structured noise
and the rewards are meaningless numbers. They prove the graph, the sampler and the search run end to end
inside a real ComfyUI server; they are not meant to look like anything. Search workflows run here at 64 px
with at most 48 NFE (the saved files say 1024 px and 500 NFE: two CPU cores cannot decode that many images).

To run the same workflow on real FLUX weights in your own ComfyUI:
  1. put this repo in ComfyUI/custom_nodes/ (git clone, or ComfyUI-Manager: "comfyui-flowsearch");
  2. place flux1-schnell.safetensors in models/diffusion_models/, clip_l.safetensors and t5xxl_fp16.safetensors
     in models/text_encoders/, ae.safetensors in models/vae/;
  3. put the reward model folders in models/rewards/ as README.md lists (e.g. clip-flant5-xxl);
  4. drag the workflow from example_workflows/ into the ComfyUI window (or open it from the template browser:
     Workflow > Browse Templates > comfyui-flowsearch) and press Queue."""


def run_facts(api, entry):
    """(NFE used, NFE budget, best reward, method) from a FlowSearch report, else the SDE steps × batch."""
    for nid, node in api.items():
        if node["class_type"] == "FlowSearch":
            rep = json.loads(entry["outputs"][nid]["flowsearch_report"][0])
            return rep["nfe"], rep["budget"], round(rep["best_reward"], 4), rep["preset"]
    steps = sum(n["inputs"].get("steps", 0) for n in api.values() if n["class_type"] == "FlowSearchScheduler")
    batch = max([n["inputs"].get("batch_size", 1) for n in api.values() if "batch_size" in n["inputs"]] or [1])
    return steps * batch, steps * batch, None, "SDE sampler"


def main():
    os.makedirs(OUT, exist_ok=True)
    rows, t_all = [], time.time()
    print("[demo] starting ComfyUI 0.3.75 (CPU) with ComfyUI-FlowSearch ...", flush=True)
    with host.Server(threads=max(1, min(2, os.cpu_count() or 1))) as srv:
        print(f"[demo] server ready on port {srv.port} in {time.time() - t_all:.1f} s", flush=True)
        print("[demo] FlowSearch Playground: base vs Best-of-N vs RBF on the shipped trained model ...", flush=True)
        pg_lines, pg_summary = demo_playground.run(srv, os.path.join(OUT, "playground"),
                                                   log=lambda m: print(m, flush=True))
        for name in DEMO_WORKFLOWS:
            path = host.workflow_path(name)
            api = host.substitute_loaders(host.ui_to_api(host.load_workflow(path), srv.object_info()))
            if any(n["class_type"] in ("FlowSearch", "FlowSearchSampler") for n in api.values()):
                api = host.scale_for_cpu(api)
            rel = os.path.relpath(path, host.ROOT)
            print(f"[demo] running {rel} ...", flush=True)
            entry = srv.run(api, timeout=1800)
            images = []
            for fname, sub, kind in host.output_images(entry):
                dst = os.path.join(OUT, f"{name}__{fname}")
                shutil.copy(os.path.join(host.BASE_DIR, kind, sub, fname), dst)
                images.append(os.path.relpath(dst, host.ROOT))
            nfe, budget, best, method = run_facts(api, entry)
            rows.append({"workflow": rel, "method": method, "nfe": nfe, "budget": budget,
                         "best_reward": best, "seconds": round(entry["wall_s"], 2), "images": images,
                         "nodes": sorted({n["class_type"] for n in api.values()})})
    report = {"comfyui": "0.3.75 (CPU)", "playground": pg_summary, "models": "tiny random-weight stand-ins", "runs": rows,
              "total_seconds": round(time.time() - t_all, 1)}
    with open(os.path.join(OUT, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
    lines = ["# FlowSearch demo report", "", *pg_lines,
             "## FLUX workflows on random-weight stand-ins (the graphs run; the pictures are noise)", "",
             "| workflow | method | NFE used / budget | best reward | time (s) | images |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['workflow']} | {r['method']} | {r['nfe']} / {r['budget']} | "
              f"{'—' if r['best_reward'] is None else r['best_reward']} | {r['seconds']} | {len(r['images'])} "
              f"(e.g. {r['images'][0] if r['images'] else '—'}) |" for r in rows]
    lines += ["", f"Total wall time (server start to stop): {report['total_seconds']} s", "", "```", STAND_IN, "```"]
    with open(os.path.join(OUT, "report.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines[2:-4]))
    print(f"\n[demo] images and report in {os.path.relpath(OUT, host.ROOT)}/ "
          f"(total {report['total_seconds']} s)\n\n{STAND_IN}")


if __name__ == "__main__":
    main()
