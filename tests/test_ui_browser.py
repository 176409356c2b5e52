"""Real-browser check of every shipped workflow: workflows/*.json (UI "save" format) is loaded with
app.loadGraphData in the real ComfyUI frontend (the comfyui-frontend-package the test server serves) inside
headless Debian Chromium (scripts/ui_browser.py; installed by scripts/setup.sh).

Per workflow: no node type the frontend does not know (frontend-only Note/MarkdownNote/Reroute excepted; the
frontend's own missing-node list and dialog are checked too), no node with has_errors, no console error or
uncaught exception beyond known offline noise, and app.graphToPrompt() — what the UI would queue — equals
host.ui_to_api node by node (class types first, then every input: widget values and links).
A screenshot and the report of each workflow land in test-artifacts/ui/ (git-ignored).

FLOWSEARCH_SKIP_BROWSER=1 skips this file (machines without Chromium); otherwise a missing Chromium fails."""
import glob
import json
import os

import pytest

import host
import ui_browser

WORKFLOWS = sorted(glob.glob(os.path.join(host.ROOT, "workflows", "*.json")))
ARTIFACTS = os.path.join(host.ROOT, "test-artifacts", "ui")

pytestmark = pytest.mark.skipif(os.environ.get("FLOWSEARCH_SKIP_BROWSER") == "1",
                                reason="FLOWSEARCH_SKIP_BROWSER=1")


@pytest.fixture(scope="module")
def ui(comfy):
    """One headless Chromium on the test server's UI for the whole module."""
    if not ui_browser.find_chromium():
        pytest.fail("chromium is not installed: run `bash scripts/setup.sh` (or set FLOWSEARCH_SKIP_BROWSER=1)")
    os.makedirs(ARTIFACTS, exist_ok=True)
    br = ui_browser.Browser(log_path=os.path.join(ARTIFACTS, "chromium.log"))
    br.start()
    try:
        br.open_ui(comfy.port)
        yield br
    finally:
        br.close()


def test_workflows_found():
    assert WORKFLOWS, "no workflows/*.json to check"


def test_frontend_registers_every_server_node(ui, comfy):
    """The page loaded cleanly and the frontend registered every node the server offers (ours included)."""
    missing = sorted(set(comfy.object_info()) - ui.registered_types())
    assert not missing, f"server node types the frontend did not register: {missing}"
    assert any(t.startswith("FlowSearch") for t in ui.registered_types())
    fatal, _ = ui.console_problems()
    assert not fatal, f"console errors while opening the UI: {fatal}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=[os.path.basename(p)[:-5] for p in WORKFLOWS])
def test_workflow_loads_in_browser(ui, comfy, path):
    name = os.path.basename(path)
    workflow = host.load_workflow(path)
    report = ui.check_workflow(workflow, name, screenshot=os.path.join(ARTIFACTS, name[:-5] + ".png"))
    with open(os.path.join(ARTIFACTS, name[:-5] + ".report.json"), "w") as f:
        json.dump(report, f, indent=1)

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
