"""The demo's first part: the FlowSearch Playground through the real server (real learned pictures).

For each caption × seed: one plain sample (stock KSampler, 10 euler steps), the shipped Best-of-N workflow and the
shipped RBF workflow at the same budget. Writes the pictures, a base | Best-of-N | RBF grid, RBF's reward-vs-NFE
plot and an accuracy table (reward counter and held-out counter)."""
import json
import os
import shutil
import sys

import numpy as np
from PIL import Image, ImageDraw

import host

if host.ROOT not in sys.path:
    sys.path.insert(0, host.ROOT)
from playground import counter, world  # noqa: E402

CAPTIONS = ["four red squares, three blue crosses and two green squares",
            "two green crosses, five red squares and one blue square",
            "one blue square, three green crosses and four red crosses",
            "three red crosses, three blue squares and two green squares",
            "five blue crosses, two green squares and one red square",
            "two red squares, one blue cross and six green crosses",
            "two red crosses and four green squares",
            "three green crosses and five blue squares"]
SEEDS = [11, 12, 13, 14, 15, 16, 17, 18]
COLUMNS = [("base", "base (1 sample)"), ("bon", "Best-of-N"), ("rbf", "RBF")]


def base_graph(caption, seed):
    return {
        "1": {"class_type": "FlowSearchPlaygroundLoader", "inputs": {"weights": "playground_flux.safetensors"}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": caption}},
        "3": {"class_type": "EmptySD3LatentImage", "inputs": {"width": 128, "height": 128, "batch_size": 1}},
        "4": {"class_type": "KSampler", "inputs": {"model": ["1", 0], "positive": ["2", 0], "negative": ["2", 0],
                                                   "latent_image": ["3", 0], "seed": seed, "steps": 10, "cfg": 1.0,
                                                   "sampler_name": "euler", "scheduler": "simple", "denoise": 1.0}},
        "5": {"class_type": "VAEDecode", "inputs": {"samples": ["4", 0], "vae": ["1", 2]}},
        "6": {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "demo_playground/base"}}}


def search_graph(srv, name, caption, seed):
    api = host.ui_to_api(host.load_workflow(host.workflow_path(name)), srv.object_info())
    for node in api.values():
        if node["class_type"] == "PrimitiveStringMultiline":
            node["inputs"]["value"] = caption
        if node["class_type"] == "FlowSearch":
            node["inputs"]["seed"] = seed
    return api


def _file(entry, nid):
    img = entry["outputs"][nid]["images"][0]
    return os.path.join(host.BASE_DIR, img.get("type", "output"), img.get("subfolder", ""), img["filename"])


def _judge(path, groups):
    img = np.asarray(Image.open(path).convert("RGB"), np.float32) / 255
    img = img.reshape(img.shape[0] // 4, 4, img.shape[1] // 4, 4, 3).mean((1, 3))
    cr, ch = counter.count_reward(img), counter.count_heldout(img)
    return {"exact": counter.exact(cr, groups), "exact_heldout": counter.exact(ch, groups),
            "rss": counter.rss(cr, groups), "counts": [cr[g.type] for g in groups]}


def run(srv, out_dir, log=print):
    """Run every case; → (markdown lines, summary dict)."""
    os.makedirs(out_dir, exist_ok=True)
    cells, times, budget = {}, {k: [] for k, _ in COLUMNS}, None
    for i, (caption, seed) in enumerate(zip(CAPTIONS, SEEDS)):
        groups = world.parse_caption(caption)
        for key, _ in COLUMNS:
            if key == "base":
                api, save = base_graph(caption, seed), "6"
            else:
                api = search_graph(srv, f"playground_{key}_counting", caption, seed)
                fs = next(n for n, v in api.items() if v["class_type"] == "FlowSearch")
                budget = api[fs]["inputs"]["nfe_budget"]
                save = next(n for n, v in api.items() if v["class_type"] == "SaveImage")
                plot = next(n for n, v in api.items() if v["class_type"] == "PreviewImage"
                            and v["inputs"]["images"] == [fs, 4])
            entry = srv.run(api, timeout=600)
            times[key].append(entry["wall_s"])
            dst = os.path.join(out_dir, f"case{i}_{key}.png")
            shutil.copy(_file(entry, save), dst)
            cells[(i, key)] = {"path": dst, **_judge(dst, groups)}
            if key == "rbf" and i == 0:
                shutil.copy(_file(entry, plot), os.path.join(out_dir, "rbf_reward_vs_nfe.png"))
        log(f"[demo] playground case {i}: {caption!r} seed {seed}: " + ", ".join(
            f"{k} {'✓' if cells[(i, k)]['exact'] else '✗'}" for k, _ in COLUMNS))
    grid_path = os.path.join(out_dir, "grid_base_bon_rbf.png")
    grid(cells, grid_path)
    summary = {"budget": budget, "cases": len(CAPTIONS), "methods": {}}
    for key, label in COLUMNS:
        rows = [cells[(i, key)] for i in range(len(CAPTIONS))]
        summary["methods"][key] = {"label": label, "acc": float(np.mean([r["exact"] for r in rows])),
                                   "acc_heldout": float(np.mean([r["exact_heldout"] for r in rows])),
                                   "rss": float(np.mean([r["rss"] for r in rows])),
                                   "seconds": float(np.mean(times[key]))}
    rel = lambda p: os.path.relpath(p, os.path.dirname(out_dir))  # noqa: E731  (paths relative to report.md)
    lines = ["## FlowSearch Playground (a trained model: real pictures)", "",
             f"{len(CAPTIONS)} captions × one seed each, through the real server: one plain sample (stock KSampler, "
             f"10 steps) against the shipped `playground_bon_counting.json` and `playground_rbf_counting.json` "
             f"({budget} NFE each). Exact = every count right, by the reward counter (held-out counter in brackets).",
             "", "| method | exact-count accuracy | RSS | time per run (s) |", "|---|---|---|---|"]
    for key, _ in COLUMNS:
        m = summary["methods"][key]
        lines.append(f"| {m['label']}{'' if key == 'base' else f' @ {budget} NFE'} | {m['acc']:.2f} "
                     f"({m['acc_heldout']:.2f}) | {m['rss']:.2f} | {m['seconds']:.2f} |")
    lines += ["", f"![base vs Best-of-N vs RBF]({rel(grid_path)})", "",
              f"![RBF reward vs NFE, first caption]({rel(os.path.join(out_dir, 'rbf_reward_vs_nfe.png'))})", "",
              "The full benchmark (100 cases, every method, 50–500 NFE): `python bench/playground.py` (README).", ""]
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    return lines, summary


def grid(cells, path, cell=128, pad=6, text_h=28, label_w=250):
    n = len(CAPTIONS)
    w = label_w + len(COLUMNS) * (cell + pad) + pad
    h = text_h + n * (cell + text_h + pad) + pad
    canvas = Image.new("RGB", (w, h), (245, 245, 245))
    draw = ImageDraw.Draw(canvas)
    for j, (_, label) in enumerate(COLUMNS):
        draw.text((label_w + pad + j * (cell + pad), 8), label, fill=(0, 0, 0))
    for i, caption in enumerate(CAPTIONS):
        y = text_h + i * (cell + text_h + pad)
        draw.text((6, y + cell // 2 - 12), caption.replace(" and ", "\nand "), fill=(0, 0, 0))
        for j, (key, _) in enumerate(COLUMNS):
            c = cells[(i, key)]
            x = label_w + pad + j * (cell + pad)
            canvas.paste(Image.open(c["path"]).convert("RGB").resize((cell, cell), Image.NEAREST), (x, y))
            mark = "exact" if c["exact"] else f"RSS {c['rss']}"
            draw.text((x, y + cell + 4), f"{mark}  counts {'/'.join(map(str, c['counts']))}",
                      fill=(0, 120, 0) if c["exact"] else (170, 0, 0))
    canvas.save(path)
