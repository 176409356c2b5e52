"""The shipped workflow files themselves (no server): the template-browser folder and its thumbnails, the order,
groups, notes, download URLs, pack markers, the saved view, link direction and the starter settings.

The browser (tests/test_ui_browser.py) and the server (tests/test_workflows_e2e.py) check that they load and run."""
import glob
import os
import re

import pytest
from PIL import Image

import host
import workflow_builder as wb

FILES = sorted(glob.glob(os.path.join(host.WORKFLOW_DIR, "*.json")))
KEYS = {f: k for k, f in host.WORKFLOW_FILES.items()}
LOADER_FILES = {"UNETLoader": [("unet_name", "diffusion_models")],
                "DualCLIPLoader": [("clip_name1", "text_encoders"), ("clip_name2", "text_encoders")],
                "VAELoader": [("vae_name", "vae")]}
STARTERS = ["starter_schnell_clip", "starter_schnell_aesthetic"]


def load(path):
    return host.load_workflow(path)


def ids(paths):
    return [KEYS.get(os.path.basename(p), os.path.basename(p)) for p in paths]


def test_folder_matches_the_list_in_order():
    """example_workflows/ holds exactly host.WORKFLOW_FILES; numbered so that the template browser's
    alphabetical order is the list's order: starters first, then the playground."""
    names = [os.path.basename(p) for p in FILES]
    assert names == sorted(host.WORKFLOW_FILES.values())
    assert list(host.WORKFLOW_FILES.values()) == sorted(host.WORKFLOW_FILES.values())
    assert list(host.WORKFLOW_FILES)[:4] == [*STARTERS, "playground_rbf_counting", "playground_bon_counting"]
    assert names[0].startswith("01 Start here")
    assert not glob.glob(os.path.join(host.ROOT, "workflows", "*.json")), \
        "workflows/*.json would be listed a second time by the template browser"
    for name in names:
        assert re.fullmatch(r"\d\d [A-Za-z0-9 ().,-]+\.json", name), f"{name}: unsafe characters for a URL"
    with pytest.raises(ValueError, match="unknown workflow"):
        host.workflow_path("no_such_workflow")


@pytest.mark.parametrize("path", FILES, ids=ids(FILES))
def test_thumbnail_from_a_run(path):
    jpg = path[:-5] + ".jpg"
    assert os.path.exists(jpg), f"missing thumbnail {os.path.basename(jpg)}: scripts/render_thumbnails.py"
    with Image.open(jpg) as img:
        assert img.format == "JPEG" and img.size == (256, 256)
        px = img.convert("L").resize((32, 32))
        lo, hi = px.getextrema()
        assert hi - lo > 60, "thumbnail is flat: not a rendered picture"


@pytest.mark.parametrize("path", FILES, ids=ids(FILES))
def test_groups_frame_every_node(path):
    w = load(path)
    groups = {g["title"]: g["bounding"] for g in w["groups"]}
    assert set(groups) == {"Loaders", "Search", "Outputs"}
    for node in w["nodes"]:
        x, y = node["pos"]
        box = (x, y - wb.Workflow.TITLE, x + node["size"][0], y + node["size"][1])
        inside = [t for t, (gx, gy, gw, gh) in groups.items()
                  if gx <= box[0] and gy <= box[1] and box[2] <= gx + gw and box[3] <= gy + gh]
        if node["type"] == "MarkdownNote":
            assert inside == [], "the Read me note stands outside the groups"
        else:
            assert len(inside) == 1, f"node {node['id']} ({node['type']}) in groups {inside}"
    kinds = {t: {n["type"] for n in w["nodes"] if _in(n, groups[t])} for t in groups}
    assert kinds["Loaders"] & {"UNETLoader", "FlowSearchPlaygroundLoader"}
    assert kinds["Outputs"] & {"SaveImage"}
    assert not any(_overlap(a, b) for i, a in enumerate(groups.values()) for b in list(groups.values())[i + 1:])


def _in(node, g):
    return g[0] <= node["pos"][0] <= g[0] + g[2] and g[1] <= node["pos"][1] <= g[1] + g[3]


def _overlap(a, b):
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


@pytest.mark.parametrize("path", FILES, ids=ids(FILES))
def test_read_me_note_says_vram_time_and_outputs(path):
    notes = [n for n in load(path)["nodes"] if n["type"] == "MarkdownNote"]
    assert len(notes) == 1
    text = notes[0]["widgets_values"][0]
    for word in ("**VRAM**", "**Time**", "**Outputs**", "output/flowsearch/"):
        assert word in text, f"Read me lacks {word}"


@pytest.mark.parametrize("path", FILES, ids=ids(FILES))
def test_links_run_left_to_right(path):
    """No backward wire: each link's source sits left of its target (or above it in the same column)."""
    w = load(path)
    nodes = {n["id"]: n for n in w["nodes"]}
    for link_id, src, _, dst, *_ in w["links"]:
        a, b = nodes[src]["pos"], nodes[dst]["pos"]
        assert a[0] < b[0] or (a[0] == b[0] and a[1] < b[1]), f"link {link_id}: {src} → {dst} runs backwards"


@pytest.mark.parametrize("path", FILES, ids=ids(FILES))
def test_loaders_offer_their_downloads_and_nodes_name_their_pack(path):
    version = wb.pack_version()
    for node in load(path)["nodes"]:
        props = node["properties"]
        if node["type"] == "MarkdownNote":
            continue
        if node["type"].startswith("FlowSearch"):
            assert (props["cnr_id"], props["ver"]) == ("comfyui-flowsearch", version)
        else:
            assert props["cnr_id"] == "comfy-core"
        if node["type"] in LOADER_FILES:
            offered = {(m["name"], m["directory"]) for m in props["models"]}
            values = dict(zip([n for n, _ in LOADER_FILES[node["type"]]], node["widgets_values"]))
            for widget, directory in LOADER_FILES[node["type"]]:
                assert (values[widget], directory) in offered, f"{node['type']}.{widget}: no download entry"
            for m in props["models"]:
                assert m["url"].startswith("https://huggingface.co/") and m["url"].endswith("/" + m["name"])


@pytest.mark.parametrize("path", FILES, ids=ids(FILES))
def test_saved_view_frames_the_whole_graph(path):
    """extra.ds puts every node and group inside the canvas a VIEW_W × VIEW_H window leaves free of the
    side bar, tab bar and zoom controls, at a zoom the frontend still draws text at."""
    w = load(path)
    s, (ox, oy) = w["extra"]["ds"]["scale"], w["extra"]["ds"]["offset"]
    left, top = wb.VIEW_LEFT, wb.VIEW_TOP
    right, bottom = wb.VIEW_W, wb.VIEW_H - wb.VIEW_BOTTOM
    boxes = [(n["pos"][0], n["pos"][1] - wb.Workflow.TITLE, n["size"][0], n["size"][1] + wb.Workflow.TITLE)
             for n in w["nodes"]] + [tuple(g["bounding"]) for g in w["groups"]]
    for x, y, bw, bh in boxes:
        sx, sy = (x + ox) * s, (y + oy) * s
        assert left <= sx and top <= sy and sx + bw * s <= right and sy + bh * s <= bottom, (x, y, bw, bh)
    assert s >= 8 / 14


@pytest.mark.parametrize("path", FILES, ids=ids(FILES))
def test_candidates_are_not_saved_by_default(path):
    """Every candidate at full size is only saved by a bypassed Save Image (Ctrl+B turns it on)."""
    w = load(path)
    nodes = {n["id"]: n for n in w["nodes"]}
    for link_id, src, slot, dst, *_ in w["links"]:
        if nodes[src]["type"] == "FlowSearch" and slot == 2 and nodes[dst]["type"] == "SaveImage":
            assert nodes[dst]["mode"] == wb.BYPASS, "candidates saved by default"


@pytest.mark.parametrize("key", STARTERS)
def test_starters_fit_a_12_to_24_gb_card(key):
    w = load(host.workflow_path(key))
    by_type = {}
    for n in w["nodes"]:
        by_type.setdefault(n["type"], []).append(n)
    assert by_type["UNETLoader"][0]["widgets_values"] == ["flux1-schnell.safetensors", "fp8_e4m3fn"]
    assert by_type["DualCLIPLoader"][0]["widgets_values"][1] == "t5xxl_fp8_e4m3fn.safetensors"
    width, height, batch = by_type["EmptySD3LatentImage"][0]["widgets_values"]
    assert 512 <= width <= 768 and 512 <= height <= 768 and batch == 1
    fs = by_type["FlowSearch"][0]["widgets_values"]
    assert fs[2] == "RBF (paper)" and 80 <= fs[5] <= 120            # seed, control, preset, steps, ip, budget
    rewards = [t for t in by_type if t.startswith("FlowSearchRewardLoader")]
    assert rewards and set(rewards) <= {"FlowSearchRewardLoaderCLIP", "FlowSearchRewardLoaderAesthetic"}
    if "FlowSearchRewardLoaderCLIP" in by_type:
        assert by_type["FlowSearchRewardLoaderCLIP"][0]["widgets_values"][1] in ("clip_score", "pickscore")


def test_view_fit_direction():
    """The builder's view maths: a graph to the right of the view moves left (negative offset), and a wider
    graph is shown smaller."""
    def view(width):
        w = wb.Workflow({}, col_widths=(width,), groups={})
        w.nodes.append({"id": 1, "pos": [5000, 300], "size": [width, 200], "_col": 0})
        return w._view([])
    small, big = view(400), view(3000)
    assert small["offset"][0] < 0 and small["scale"] == 1.0
    assert big["scale"] < small["scale"]
    x_screen = (5000 + big["offset"][0]) * big["scale"]
    assert wb.VIEW_LEFT <= x_screen and x_screen + 3000 * big["scale"] <= wb.VIEW_W
