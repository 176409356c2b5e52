"""Every shipped workflow (example_workflows/) runs end to end through the real server (loader substitution + CPU
scale rule of scripts/host.py), produces all its outputs, and its FlowSearch report keeps NFE within budget and
its summary text (what web/flowsearch.js shows on the node) says so; Cancel works."""
import glob
import json
import os
import time

import pytest

import host

WORKFLOWS = sorted(glob.glob(os.path.join(host.WORKFLOW_DIR, "*.json")))


def runnable(comfy, path, **overrides):
    api = host.scale_for_cpu(host.substitute_loaders(host.ui_to_api(host.load_workflow(path), comfy.object_info())))
    for node in api.values():
        for k, v in overrides.get(node["class_type"], {}).items():
            node["inputs"][k] = v
    return api


def output_nodes(comfy, api):
    oi = comfy.object_info()
    return {nid for nid, n in api.items() if oi[n["class_type"]].get("output_node")}


KEYS = {f: k for k, f in host.WORKFLOW_FILES.items()}


@pytest.mark.parametrize("path", WORKFLOWS, ids=[KEYS.get(os.path.basename(p), os.path.basename(p)) for p in WORKFLOWS])
def test_shipped_workflow_runs(comfy, path):
    api = runnable(comfy, path)
    entry = comfy.run(api, timeout=600)
    outs = entry["outputs"]
    missing = output_nodes(comfy, api) - set(outs)
    assert not missing, f"output nodes produced nothing: {[api[m]['class_type'] for m in missing]}"
    for nid, node in api.items():
        if node["class_type"] in ("SaveImage", "PreviewImage"):
            assert outs[nid]["images"], f"{node['class_type']} {nid} has no image"
        if node["class_type"] == "FlowSearch":
            rep = json.loads(outs[nid]["flowsearch_report"][0])
            assert 0 < rep["nfe"] <= rep["budget"] == node["inputs"]["nfe_budget"]
            assert len(rep["searches"][0]["seeds"]) == len(rep["searches"][0]["candidate_rewards"]) > 0
        if node["class_type"] == "FlowSearchScoreImages":
            assert outs[nid].get("text") and outs[nid]["text"][0].strip()
        if node["class_type"] == "FlowSearch":                      # the summary web/flowsearch.js shows
            assert f"NFE {rep['nfe']}/{rep['budget']}" in outs[nid]["text"][0]


def test_cancel_mid_search_then_next_prompt_runs(comfy):
    """POST /interrupt during a long search: the prompt ends promptly (checked after every NFE batch) and the
    server runs the next prompt."""
    path = host.workflow_path("bon_baseline")
    small = runnable(comfy, path)
    t_small = comfy.run(small, timeout=300)["wall_s"]
    big = runnable(comfy, path, FlowSearch={"nfe_budget": 20000, "max_batch": 1})
    pid = comfy.queue(big)
    time.sleep(max(3.0, 2 * t_small))               # well inside the search (it would take minutes)
    t0 = time.time()
    comfy.interrupt()
    entry = comfy.wait(pid, timeout=120)
    latency = time.time() - t0
    msgs = [m[0] for m in entry["status"]["messages"]]
    assert "execution_interrupted" in msgs, msgs
    print(f"cancel latency {latency:.3f} s (one small search: {t_small:.2f} s for 48 NFE)")
    assert latency < 2.0
    assert comfy.run(small, timeout=300)["outputs"]
