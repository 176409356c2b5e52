"""Real-browser check of every shipped workflow: example_workflows/*.json (UI "save" format) is loaded with
app.loadGraphData in the real ComfyUI frontend (the comfyui-frontend-package the test server serves) inside
headless Debian Chromium (scripts/ui_browser.py; installed by scripts/setup.sh).

Per workflow: no node type the frontend does not know (frontend-only Note/MarkdownNote/Reroute excepted; the
frontend's own missing-node list and dialog are checked too), no node with has_errors, no console error or
uncaught exception beyond known offline noise, and app.graphToPrompt() — what the UI would queue — equals
host.ui_to_api node by node (class types first, then every input: widget values and links).
The saved view (extra.ds) shows every node and group inside the visible canvas, at a zoom the frontend
still draws text at. After a run queued from the UI, the FlowSearch extension (web/flowsearch.js) shows the
run summary and every candidate's score on the FlowSearch and Score Images nodes, and saves nothing into
the workflow. Screenshots (fitted, and the saved view as a user first sees it), the reports and the
after-run pictures land in test-artifacts/ui/ (git-ignored).

FLOWSEARCH_SKIP_BROWSER=1 skips this file (machines without Chromium); otherwise a missing Chromium fails."""
import glob
import json
import os
import time

import pytest

import host
import ui_browser
from workflow_builder import Workflow

WORKFLOWS = sorted(glob.glob(os.path.join(host.WORKFLOW_DIR, "*.json")))
ARTIFACTS = os.path.join(host.ROOT, "test-artifacts", "ui")
KEYS = {f: k for k, f in host.WORKFLOW_FILES.items()}
MIN_READABLE_SCALE = 8 / 14   # frontend 1.32.9: nodes drop their text below 8 px fonts (LiteGraph font 14 px)


def key(path):
    return KEYS.get(os.path.basename(path), os.path.basename(path)[:-5])

pytestmark = pytest.mark.skipif(os.environ.get("FLOWSEARCH_SKIP_BROWSER") == "1",
                                reason="FLOWSEARCH_SKIP_BROWSER=1")


@pytest.fixture(scope="module")
def ui(comfy):
    """One headless Chromium on the test server's UI for the whole module."""
    if not ui_browser.find_chromium():
        pytest.fail("chromium is not installed: run `bash scripts/setup.sh` (or set FLOWSEARCH_SKIP_BROWSER=1)")
    os.makedirs(ARTIFACTS, exist_ok=True)
    # the session's server has run the bad-input matrices: a prompt refused for a NaN input (e.g. box_threshold
    # NaN through the API) stays in ComfyUI's history, whose JSON then holds NaN, which the frontend cannot parse
    comfy.request("/history", {"clear": True})
    br = ui_browser.Browser(log_path=os.path.join(ARTIFACTS, "chromium.log"))
    br.start()
    try:
        br.open_ui(comfy.port)
        yield br
    finally:
        br.close()


def test_workflows_found():
    assert WORKFLOWS, "no example_workflows/*.json to check"


def test_frontend_registers_every_server_node(ui, comfy):
    """The page loaded cleanly and the frontend registered every node the server offers (ours included)."""
    missing = sorted(set(comfy.object_info()) - ui.registered_types())
    assert not missing, f"server node types the frontend did not register: {missing}"
    assert any(t.startswith("FlowSearch") for t in ui.registered_types())
    fatal, _ = ui.console_problems()
    assert not fatal, f"console errors while opening the UI: {fatal}"


def _inside(rect, area, tol=1.0):
    x, y, w, h = rect
    ax, ay, aw, ah = area
    return x >= ax - tol and y >= ay - tol and x + w <= ax + aw + tol and y + h <= ay + ah + tol


@pytest.mark.parametrize("path", WORKFLOWS, ids=[key(p) for p in WORKFLOWS])
def test_workflow_loads_in_browser(ui, comfy, path):
    name = os.path.basename(path)
    workflow = host.load_workflow(path)
    report = ui.check_workflow(workflow, name, screenshot=os.path.join(ARTIFACTS, key(path) + ".png"),
                               view_screenshot=os.path.join(ARTIFACTS, key(path) + ".view.png"))
    with open(os.path.join(ARTIFACTS, key(path) + ".report.json"), "w") as f:
        json.dump(report, f, indent=1)

    view = report["view"]                                   # the saved view, as the user first sees it
    hidden = [f"{b.get('type', b.get('title'))} {b['rect']}" for b in view["nodes"] + view["groups"]
              if not _inside(b["rect"], view["visible"])]
    assert not hidden, f"outside the visible canvas {view['visible']} in the saved view: {hidden}"
    assert len(view["groups"]) == len(workflow["groups"]) >= 3
    assert view["scale"] >= MIN_READABLE_SCALE, "saved zoom too small: the frontend would hide the node text"
    files = sorted({m["name"] for n in workflow["nodes"] for m in n["properties"].get("models", [])})
    if files:                                               # properties.models reach the missing-model dialog
        dialog = " ".join(report["missing_models_dialog"])
        assert all(f in dialog for f in files), f"missing-model dialog lacks some of {files}: {dialog}"

    assert report["missing_node_types"] == [], "node types unknown to the frontend"
    assert not report["frontend_missing"], "the frontend reported missing node types on load"
    assert report["dialogs"] == [], "the frontend opened a dialog on load (missing nodes/models, load error)"
    assert report["node_errors"] == [], "nodes rendered with has_errors"
    assert report["node_count"]["rendered"] == report["node_count"]["workflow"]
    assert report["console_errors"] == [], "console errors / exceptions while loading"

    ours = host.ui_to_api(workflow, comfy.object_info())
    frontend = report["prompt"] or {}
    assert {k: v["class_type"] for k, v in frontend.items()} == {k: v["class_type"] for k, v in ours.items()}, \
        "graphToPrompt and ui_to_api disagree on the nodes / class types"
    diffs = ui_browser.compare_prompts(frontend, ours, comfy.object_info())
    assert diffs == [], "graphToPrompt and ui_to_api disagree:\n" + "\n".join(diffs)
    assert os.path.getsize(report["screenshot"]["path"]) > 10_000


def test_browser_check_detects_broken_workflow(ui):
    """The checks are not vacuous: an unknown node type is reported by us, by the frontend (its list and
    its missing-nodes dialog) and as a node with has_errors."""
    workflow = host.load_workflow(WORKFLOWS[0])
    broken = json.loads(json.dumps(workflow))
    node = next(n for n in broken["nodes"] if n["type"] not in ui_browser.FRONTEND_ONLY)
    node["type"] = "FlowSearchNoSuchNode"
    report = ui.check_workflow(broken, "broken.json")
    assert report["missing_node_types"] == ["FlowSearchNoSuchNode"]
    assert report["frontend_missing"] == ["FlowSearchNoSuchNode"]
    assert report["dialogs"], "the frontend's missing-nodes dialog was not seen"
    assert report["node_errors"] == [f"{node['id']} (FlowSearchNoSuchNode)"]
    assert ui_browser.problems(report)
    assert ui.evaluate(ui_browser.JS_DIALOGS) == [], "dialog left open after the check"


def test_compare_prompts_reports_widget_and_link_changes():
    a = {"1": {"class_type": "X", "inputs": {"steps": 10, "m": ["2", 0], "f": 2}},
         "2": {"class_type": "Y", "inputs": {}}}
    assert ui_browser.compare_prompts(a, json.loads(json.dumps(a))) == []
    b = json.loads(json.dumps(a))
    b["1"]["inputs"].update(steps=11, m=["2", 1], f=2.0)
    diffs = ui_browser.compare_prompts(a, b)
    assert len(diffs) == 2 and "steps" in diffs[0] + diffs[1] and "m" in diffs[0] + diffs[1]
    b["2"]["class_type"] = "Z"
    assert any("class_type" in d for d in ui_browser.compare_prompts(a, b))


def test_template_browser_lists_ours_in_order_with_thumbnails(ui, comfy):
    """What the template browser gets: our example_workflows/ in file-name order (starter first, then the
    playground), each workflow and its .jpg thumbnail served."""
    lists = ui.evaluate("window.comfyAPI.api.api.getWorkflowTemplates()")
    ours = next(names for names in lists.values() if any(n.startswith("01 Start here") for n in names))
    module = next(m for m, names in lists.items() if names is ours or names == ours)
    assert ours == [f[:-5] for f in host.WORKFLOW_FILES.values()]
    served = ui.evaluate("Promise.all(%s.map(n => Promise.all(['.json', '.jpg'].map(ext => fetch("
                         "window.comfyAPI.api.api.apiURL('/workflow_templates/%s/' + n + ext))"
                         ".then(r => [r.status, r.headers.get('content-type')])))))" % (json.dumps(ours), module))
    for name, ((js_status, _), (jpg_status, jpg_type)) in zip(ours, served):
        assert js_status == 200 and jpg_status == 200 and jpg_type == "image/jpeg", name


# ------------------------------------------------------------------------------------- scores on the node
def _run_and_check(ui, workflow, name, node_type, until_text):
    """Load `workflow`, queue it from the UI, wait for the extension's text on every `node_type` node."""
    ui.close_dialogs()
    ui.load_workflow(workflow, name)
    before = ui.evaluate("app.graph.serialize()")
    ids = [n["id"] for n in workflow["nodes"] if n["type"] == node_type]
    until = " && ".join(f"(app.graph.getNodeById({i})?.widgets?.find(w => w.name === 'flowsearch_summary')"
                        f"?.element?.textContent || '').includes({json.dumps(until_text)})" for i in ids)
    fatal, _ = ui.queue_from_ui(until, timeout=600)
    _wait_for_previews(ui)
    texts = ui.summaries()
    shot = ui.screenshot(os.path.join(ARTIFACTS, f"after_run_{name[:-5]}.png"), margin=16)
    after = ui.evaluate("app.graph.serialize()")
    visible = ui.evaluate("[...document.querySelectorAll('.flowsearch-summary')]"
                          ".filter(e => e.getClientRects().length && e.offsetParent !== null).length")
    return ids, texts, shot, before, after, visible, fatal


def _wait_for_previews(ui, timeout=15.0):
    """Give the output images time to load into their nodes before the picture (best effort, no failure)."""
    js = ("app.graph.nodes.filter(n => ['SaveImage', 'PreviewImage'].includes(n.type) && n.mode === 0)"
          ".every(n => n.imgs?.length && n.imgs.every(i => i.complete && i.naturalWidth > 0))")
    end = time.time() + timeout
    while time.time() < end and not ui.evaluate(js):
        time.sleep(0.25)
    ui.settle(5)


def test_flowsearch_scores_show_on_node_after_ui_run(ui, comfy):
    path = host.workflow_path("playground_rbf_counting")
    workflow = host.load_workflow(path)
    fs = next(n for n in workflow["nodes"] if n["type"] == "FlowSearch")
    budget = host.ui_to_api(workflow, comfy.object_info())[str(fs["id"])]["inputs"]["nfe_budget"]
    ids, texts, shot, before, after, visible, fatal = _run_and_check(ui, workflow, "playground_rbf.json",
                                                                     "FlowSearch", f"/{budget}")
    text = texts[fs["id"]]
    print(text)
    lines = text.splitlines()
    assert lines[0].startswith("rbf · NFE ") and f"/{budget} · best reward" in lines[0], lines[0]
    assert any("held-out" in ln for ln in lines), "the counting reward's two counters are missing"
    cands = [ln for ln in lines if ln.strip().startswith("#")]
    chosen = [ln for ln in cands if ln.endswith("← chosen")]
    assert len(cands) >= 2 and len(chosen) == 1, "every candidate's score, exactly one marked chosen"
    best = float(lines[0].split("best reward ")[1].split(" ")[0])
    assert float(chosen[0].split()[1]) == pytest.approx(best, rel=1e-3)    # the chosen one has the best score
    assert max(float(ln.split()[1]) for ln in cands) == pytest.approx(best, rel=1e-3)
    assert visible == 1, "the summary element is not displayed on the canvas"
    node_before = next(n for n in before["nodes"] if n["id"] == fs["id"])
    node_after = next(n for n in after["nodes"] if n["id"] == fs["id"])
    assert node_after["widgets_values"] == node_before["widgets_values"] == fs["widgets_values"], \
        "the display widget leaked into the saved workflow"
    assert not fatal, f"console errors during the run: {fatal}"
    assert os.path.getsize(shot["path"]) > 20_000


def test_score_images_scores_show_on_node_after_ui_run(ui, comfy):
    w = Workflow(comfy.object_info())
    caption = "two red squares and three blue crosses"
    loader = w.node("FlowSearchPlaygroundLoader", ["playground_flux.safetensors"], col=1)
    cond = w.node("CLIPTextEncode", [caption], col=2, clip=(loader, 1))
    latent = w.node("EmptySD3LatentImage", [128, 128, 3], col=2)
    sample = w.node("KSampler", [3, 10, 1.0, "euler", "simple", 1.0], col=3, model=(loader, 0),
                    positive=(cond, 0), negative=(cond, 0), latent_image=(latent, 0))
    dec = w.node("VAEDecode", [], col=3, samples=(sample, 0), vae=(loader, 2))
    reward = w.node("FlowSearchCountObjectsReward", [caption], col=1)
    score = w.node("FlowSearchScoreImages", [caption], col=4, size=(400, 200), images=(dec, 0), reward=(reward, 0))
    workflow = w.to_json()
    ids, texts, shot, *_, fatal = _run_and_check(ui, workflow, "score_images.json", "FlowSearchScoreImages", "#2:")
    lines = texts[score["id"]].splitlines()
    print(texts[score["id"]])
    assert lines[0] == "count_objects" and [ln.split(":")[0] for ln in lines[1:4]] == ["#0", "#1", "#2"]
    scores = [float(ln.split(":")[1].split()[0]) for ln in lines[1:4]]
    marked = [i for i, ln in enumerate(lines[1:4]) if "<- best" in ln]
    assert all(v <= 0 for v in scores) and marked == [scores.index(max(scores))]   # −RSS; the best one marked
    assert not fatal, f"console errors during the run: {fatal}"


def test_options_node_renders_its_widgets_and_steers_a_ui_run(ui, comfy):
    """A FlowSearch Options node as an artist adds it: its typed widgets are drawn (with ranges from the option table),
    its output wires into FlowSearch's 'search options' input, and a run queued from the UI uses what it set
    (SMC with n = 3 on 4 steps: 12 NFE, three candidates on the node)."""
    w = Workflow(comfy.object_info())
    caption = "two red squares and one blue cross"
    loader = w.node("FlowSearchPlaygroundLoader", ["playground_flux.safetensors"], col=0)
    reward = w.node("FlowSearchCountObjectsReward", [""], col=0)
    cond = w.node("CLIPTextEncode", [caption], col=1, clip=(loader, 1))
    latent = w.node("EmptySD3LatentImage", [128, 128, 1], col=1)
    opts = w.node("FlowSearchOptions", {"n": 3}, col=2, size=(330, 700))
    fs = w.node("FlowSearch", {"seed": 1, "preset": "SMC", "steps": 4, "interpolant": "linear", "nfe_budget": 40,
                               "prompt": caption, "grid": "uniform"},
                col=3, size=(340, 760), model=(loader, 0), positive=(cond, 0), latent=(latent, 0),
                vae=(loader, 2), reward=(reward, 0), search_options=(opts, 0))
    w.node("PreviewImage", [], col=4, images=(fs, 0))
    workflow = w.to_json()
    ids, texts, shot, *_, fatal = _run_and_check(ui, workflow, "options_node.json", "FlowSearch", "/40")
    widgets = ui.evaluate(f"app.graph.getNodeById({opts['id']}).widgets.map(x => [x.name, x.options?.max ?? null])")
    names = [n for n, _ in widgets]
    assert names[:3] == ["n", "k", "beta"] and "rbf_min_draws" in names and "reward_resolution" in names
    assert dict(widgets)["n"] == 100000                                  # the option table's ceiling
    link = ui.evaluate(f"app.graph.getNodeById({fs['id']}).inputs.find(i => i.name === 'search_options')?.link")
    assert link is not None, "the options output is not wired into FlowSearch"
    lines = texts[fs["id"]].splitlines()
    print(texts[fs["id"]])
    assert lines[0].startswith("smc · NFE 12/40"), lines[0]              # n = 3 particles × 4 steps
    assert len([ln for ln in lines if ln.strip().startswith("#")]) == 3
    assert not fatal, f"console errors during the run: {fatal}"
