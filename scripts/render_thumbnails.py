"""Render the template-browser thumbnail of every shipped workflow from a real run: example_workflows/<name>.jpg.

    .build/venv/bin/python scripts/render_thumbnails.py [key ...]

The playground workflows run exactly as saved (the shipped trained model). FLUX weights cannot exist here, so a
FLUX workflow's thumbnail comes from the SAME GRAPH SHAPE run on the playground model (`playground_shape`): its
FLUX loaders become the Playground Loader (MODEL, CLIP, VAE), its reward loaders the Count Objects Reward, its
prompt a playground caption, its latent 128 px, its budget at most 100 NFE, and its time grid the playground's
(linear path, uniform grid: the playground model is not step-distilled), and gradient guidance is off (counting
is not differentiable). Every other node runs as saved. Those
thumbnails carry a strip that says so."""
import io
import json
import os
import sys

from PIL import Image, ImageDraw, ImageFont

import host

sys.path.insert(0, host.ROOT)
from playground.harness import SETTINGS  # noqa: E402

THUMB = 256
CAPTIONS = {"starter_schnell_aesthetic": "two green crosses, three red squares and one blue square",
            "rbf_vqascore": "one blue square, two red crosses and three green squares",
            "bon_baseline": "one blue square, two red crosses and three green squares",
            "smc_vqascore": "one blue square, two red crosses and three green squares",
            "svdd_vqascore": "one blue square, two red crosses and three green squares",
            "sop_vqascore": "one blue square, two red crosses and three green squares",
            "rbf_counting": "five green crosses and three red squares",
            "rbf_dps_aesthetic": "four blue crosses and two red squares",
            "score_only": "two blue squares and four red crosses",
            "flux_dev_rbf": "three green squares and two blue crosses"}
DEFAULT_CAPTION = "three red squares, two blue crosses and one green square"
FLUX_LOADERS = {"UNETLoader": 0, "DualCLIPLoader": 1, "VAELoader": 2}   # -> the Playground Loader's output slot
MAX_NFE = 100


def playground_shape(api, caption):
    """The FLUX API prompt `api` rewired onto the playground model (module docstring); returns a new prompt."""
    out = json.loads(json.dumps(api))
    loaders = {nid: n["class_type"] for nid, n in out.items() if n["class_type"] in FLUX_LOADERS}
    if not loaders:
        return out
    pg = next(nid for nid, t in loaders.items() if t == "UNETLoader")
    for nid in loaders:
        if nid != pg:
            del out[nid]
    out[pg] = {"class_type": "FlowSearchPlaygroundLoader", "inputs": {"weights": "playground_flux.safetensors"}}
    for node in out.values():
        ins, ct = node["inputs"], node["class_type"]
        for k, v in list(ins.items()):
            if isinstance(v, list) and len(v) == 2 and v[0] in loaders:
                ins[k] = [pg, FLUX_LOADERS[loaders[v[0]]]]
        if ct.startswith("FlowSearchRewardLoader"):
            node["class_type"], node["inputs"] = "FlowSearchCountObjectsReward", {"targets": ""}
        elif ct == "PrimitiveStringMultiline":
            ins["value"] = caption
        elif ct == "CLIPTextEncode" and not isinstance(ins.get("text"), list):
            ins["text"] = caption
        elif ct == "EmptySD3LatentImage":
            ins.update(width=128, height=128)
        elif ct == "FlowSearch":
            ins.update(steps=SETTINGS["steps"], interpolant=SETTINGS["interpolant"], grid=SETTINGS["grid"],
                       nfe_budget=min(MAX_NFE, ins["nfe_budget"]), guidance_scale=0.0)
        elif ct == "FlowSearchSampler":
            ins["nfe_budget"] = min(MAX_NFE, ins["nfe_budget"])
        elif ct == "FlowSearchInterpolantConverter":
            ins["interpolant"] = SETTINGS["interpolant"]
        elif ct == "FlowSearchScheduler":
            ins.update(steps=SETTINGS["steps"], grid=SETTINGS["grid"])
        elif ct == "KSampler":
            ins["steps"] = SETTINGS["steps"]
    return out


def first_saved_image(api, entry):
    """The images of the first SaveImage node of the prompt (by node id), else of the first PreviewImage."""
    for kind in ("SaveImage", "PreviewImage"):
        for nid in sorted((n for n, v in api.items() if v["class_type"] == kind), key=int):
            imgs = entry["outputs"].get(nid, {}).get("images", [])
            if imgs:
                return [Image.open(os.path.join(host.BASE_DIR, i.get("type", "output"), i.get("subfolder", ""),
                                                i["filename"])).convert("RGB") for i in imgs]
    raise RuntimeError("the run produced no image")


def thumbnail(images, label=None):
    """Up to four images tiled into a THUMB² picture (nearest-neighbour: the playground is pixel art)."""
    n = 1 if len(images) == 1 else 2
    cell = THUMB // n
    out = Image.new("RGB", (THUMB, THUMB), (24, 24, 24))
    for i, img in enumerate(images[:n * n]):
        out.paste(img.resize((cell, cell), Image.NEAREST), ((i % n) * cell, (i // n) * cell))
    if label:
        draw = ImageDraw.Draw(out)
        font = ImageFont.load_default(size=12)
        draw.rectangle([0, THUMB - 20, THUMB, THUMB], fill=(0, 0, 0))
        draw.text((6, THUMB - 17), label, fill=(230, 230, 230), font=font)
    return out


def render(srv, key):
    api = host.ui_to_api(host.load_workflow(host.workflow_path(key)), srv.object_info())
    is_flux = any(n["class_type"] in FLUX_LOADERS for n in api.values())
    run = playground_shape(api, CAPTIONS.get(key, DEFAULT_CAPTION)) if is_flux else api
    entry = srv.run(run, timeout=900)
    img = thumbnail(first_saved_image(run, entry), "this graph on the playground model" if is_flux else None)
    path = host.workflow_path(key)[:-5] + ".jpg"
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=88, optimize=True)
    with open(path, "wb") as f:
        f.write(buf.getvalue())
    return path, round(entry["wall_s"], 1)


def main(keys):
    with host.Server(threads=max(1, min(2, os.cpu_count() or 1))) as srv:
        for key in keys or list(host.WORKFLOW_FILES):
            path, secs = render(srv, key)
            print(f"wrote {os.path.relpath(path, host.ROOT)} ({secs} s)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
