"""The main job: run the shipped workflows through a real ComfyUI server on the bundled tiny models.

Starts ComfyUI (CPU) with this pack, converts each workflow in DEMO_WORKFLOWS from its saved UI format,
swaps in the tiny random-weight stand-ins for the model files (rule: scripts/host.py), runs it, copies the
images to output/demo/, writes output/demo/report.{md,json} and stops the server."""
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import host  # noqa: E402

DEMO_WORKFLOWS = ["flux_schnell_vp_sde"]
OUT = os.path.join(host.ROOT, "output", "demo")

STAND_IN = """NOTE: the bundled models are RANDOM-WEIGHT STAND-INS (a 0.8 M-parameter FLUX and a tiny 16-channel
TAESD-style VAE), so the images are structured noise. They prove the graph, the sampler and the search run
end to end inside a real ComfyUI server; they are not meant to look like anything.

To run the same workflow on real FLUX weights in your own ComfyUI:
  1. put this repo in ComfyUI/custom_nodes/ (git clone, or ComfyUI-Manager: "comfyui-flowsearch");
  2. place flux1-schnell.safetensors in models/diffusion_models/, clip_l.safetensors and t5xxl_fp16.safetensors
     in models/text_encoders/, ae.safetensors in models/vae/;
  3. drag workflows/<name>.json into the ComfyUI window and press Queue."""


def nfe_of(api):
    """Model evaluations the prompt asks for (SDE workflows: steps × batch)."""
    steps = sum(n["inputs"].get("steps", 0) for n in api.values() if n["class_type"] == "FlowSearchScheduler")
    batch = max([n["inputs"].get("batch_size", 1) for n in api.values() if "batch_size" in n["inputs"]] or [1])
    return steps * batch


def main():
    os.makedirs(OUT, exist_ok=True)
    rows, t_all = [], time.time()
    print("[demo] starting ComfyUI 0.3.75 (CPU) with ComfyUI-FlowSearch ...", flush=True)
    with host.Server(threads=max(1, min(2, os.cpu_count() or 1))) as srv:
        print(f"[demo] server ready on port {srv.port} in {time.time() - t_all:.1f} s", flush=True)
        for name in DEMO_WORKFLOWS:
            path = os.path.join(host.ROOT, "workflows", f"{name}.json")
            api = host.substitute_loaders(host.ui_to_api(host.load_workflow(path), srv.object_info()))
            print(f"[demo] running workflows/{name}.json ...", flush=True)
            entry = srv.run(api, timeout=1800)
            images = []
            for fname, sub, kind in host.output_images(entry):
                dst = os.path.join(OUT, f"{name}__{fname}")
                shutil.copy(os.path.join(host.BASE_DIR, kind, sub, fname), dst)
                images.append(os.path.relpath(dst, host.ROOT))
            rows.append({"workflow": f"workflows/{name}.json", "nfe": nfe_of(api), "seconds": round(entry["wall_s"], 2),
                         "images": images, "nodes": sorted({n["class_type"] for n in api.values()})})
    report = {"comfyui": "0.3.75 (CPU)", "models": "tiny random-weight stand-ins", "runs": rows,
              "total_seconds": round(time.time() - t_all, 1)}
    with open(os.path.join(OUT, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
    lines = ["# FlowSearch demo report", "", "| workflow | NFE | time (s) | images |", "|---|---|---|---|"]
    lines += [f"| {r['workflow']} | {r['nfe']} | {r['seconds']} | {', '.join(r['images'])} |" for r in rows]
    lines += ["", f"Total wall time (server start to stop): {report['total_seconds']} s", "", "```", STAND_IN, "```"]
    with open(os.path.join(OUT, "report.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines[2:-4]))
    print(f"\n[demo] images and report in {os.path.relpath(OUT, host.ROOT)}/ "
          f"(total {report['total_seconds']} s)\n\n{STAND_IN}")


if __name__ == "__main__":
    main()
