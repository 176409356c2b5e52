"""The pack's node interface as the frontend sees it (/object_info), against the committed snapshot
tests/fixtures/node_schema.json: node display names and categories, inputs (name, type, required, default, combo
options, in order) and outputs (display name, type). Saved workflows store widget values by position and links by
slot, so an unintended change here breaks users' workflows.

Regenerate on purpose (starts a ComfyUI server) and commit the JSON:

    .build/venv/bin/python tests/test_node_schema_snapshot.py --update
    FLOWSEARCH_UPDATE_SNAPSHOT=1 .build/venv/bin/python -m pytest tests/test_node_schema_snapshot.py

Combos listing files found on the machine (reward folders, playground weights) keep their name and type only."""
import argparse
import json
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SNAPSHOT = os.path.join(HERE, "fixtures", "node_schema.json")
UPDATE_ENV = "FLOWSEARCH_UPDATE_SNAPSHOT"
REGENERATE = (f"If the change is intended, regenerate the snapshot with `.build/venv/bin/python "
              f"tests/test_node_schema_snapshot.py --update` (or {UPDATE_ENV}=1 .build/venv/bin/python -m pytest "
              "tests/test_node_schema_snapshot.py) and commit tests/fixtures/node_schema.json.")
MACHINE = "(files found on this machine)"
#: combo inputs whose options are folders/files on disk: options and default left out of the snapshot
MACHINE_DEPENDENT = {
    "FlowSearchRewardLoaderCLIP": {"model"},
    "FlowSearchRewardLoaderAesthetic": {"model"},
    "FlowSearchRewardLoaderImageReward": {"model"},
    "FlowSearchRewardLoaderVQAScore": {"model"},
    "FlowSearchRewardLoaderCounting": {"detector", "sam"},
    "FlowSearchPlaygroundLoader": {"weights"},
}


# ------------------------------------------------------------------------------------------------ building
def pack_nodes(object_info):
    """The pack's nodes in /object_info: FlowSearch* ids, without the test-only nodes (category testing/...)."""
    return {nid: spec for nid, spec in object_info.items()
            if nid.startswith("FlowSearch") and not spec.get("category", "").startswith("testing/")}


def _input_entry(node_id, name, entry, required):
    kind = entry[0]
    opts = entry[1] if len(entry) > 1 and isinstance(entry[1], dict) else {}
    options = kind if isinstance(kind, list) else opts.get("options")  # V1 legacy combos: [options, {...}]
    out = {"name": name, "type": "COMBO" if isinstance(kind, list) else kind, "required": required}
    if name in MACHINE_DEPENDENT.get(node_id, ()):
        out["options"] = MACHINE
        return out
    if "default" in opts:
        out["default"] = opts["default"]
    if options is not None:
        out["options"] = list(options)
    return out


def node_entry(node_id, spec):
    inputs = spec.get("input", {})
    order = spec.get("input_order") or {group: list(v) for group, v in inputs.items()}
    return {
        "display_name": spec.get("display_name"),
        "category": spec.get("category"),
        "inputs": [_input_entry(node_id, name, inputs[group][name], group == "required")
                   for group in ("required", "optional") for name in order.get(group, [])],
        "outputs": [{"name": n, "type": t, "is_list": bool(lst)}
                    for n, t, lst in zip(spec["output_name"], spec["output"], spec["output_is_list"])],
    }


def build(object_info):
    return {nid: node_entry(nid, spec) for nid, spec in sorted(pack_nodes(object_info).items())}


def write(schema, path=SNAPSHOT):
    with open(path, "w") as f:
        json.dump(schema, f, indent=1, ensure_ascii=False)
        f.write("\n")


def load(path=SNAPSHOT):
    with open(path) as f:
        return json.load(f)


# ------------------------------------------------------------------------------------------------ differences
def _inputs_diff(nid, old, new):
    a, b = {i["name"]: i for i in old}, {i["name"]: i for i in new}
    lines = [f"{nid}: input '{n}' removed" for n in a if n not in b]
    lines += [f"{nid}: new input '{n}' ({b[n]['type']})" for n in b if n not in a]
    for n in (n for n in a if n in b):
        for key in sorted(a[n].keys() | b[n].keys()):
            if a[n].get(key) != b[n].get(key):
                lines.append(f"{nid}: input '{n}' {key} {a[n].get(key)!r} -> {b[n].get(key)!r}")
    kept_a, kept_b = [n for n in a if n in b], [n for n in b if n in a]
    if kept_a != kept_b:
        lines.append(f"{nid}: input order {kept_a} -> {kept_b}")
    return lines


def _outputs_diff(nid, old, new):
    lines = [f"{nid}: output {i} {a} -> {b}" for i, (a, b) in enumerate(zip(old, new)) if a != b]
    lines += [f"{nid}: output {i} {a} removed" for i, a in enumerate(old[len(new):], len(new))]
    lines += [f"{nid}: new output {i} {b}" for i, b in enumerate(new[len(old):], len(old))]
    return lines


def differences(old, new):
    """Human-readable changes from schema ``old`` to ``new`` (empty when equal)."""
    lines = [f"{nid}: node removed" for nid in old if nid not in new]
    lines += [f"{nid}: new node" for nid in new if nid not in old]
    for nid in (n for n in old if n in new):
        a, b = old[nid], new[nid]
        lines += [f"{nid}: {key} {a.get(key)!r} -> {b.get(key)!r}" for key in ("display_name", "category")
                  if a.get(key) != b.get(key)]
        lines += _inputs_diff(nid, a["inputs"], b["inputs"]) + _outputs_diff(nid, a["outputs"], b["outputs"])
    return lines


# ------------------------------------------------------------------------------------------------ tests
def test_differences_name_the_node_and_the_input():
    old = {"N": {"display_name": "N", "category": "c", "outputs": [{"name": "x", "type": "IMAGE", "is_list": False}],
                 "inputs": [{"name": "a", "type": "INT", "required": True, "default": 1},
                            {"name": "b", "type": "COMBO", "required": True, "options": ["p", "q"]}]}}
    new = json.loads(json.dumps(old))
    new["N"]["inputs"][0]["default"] = 2
    new["N"]["inputs"].reverse()
    new["N"]["outputs"][0]["name"] = "y"
    new["M"] = old["N"]
    assert differences(old, new) == ["M: new node", "N: input 'a' default 1 -> 2", "N: input order ['a', 'b'] -> "
                                     "['b', 'a']", "N: output 0 {'name': 'x', 'type': 'IMAGE', 'is_list': False} -> "
                                     "{'name': 'y', 'type': 'IMAGE', 'is_list': False}"]
    assert differences(old, old) == []


def test_node_schema_matches_snapshot(comfy):
    live = build(comfy.object_info())
    assert len(live) >= 15, f"only {sorted(live)} served: the pack failed to import (see the server log)"
    if os.environ.get(UPDATE_ENV) == "1":
        write(live)
        pytest.skip(f"{UPDATE_ENV}=1: rewrote {os.path.relpath(SNAPSHOT, ROOT)} from the live server")
    diff = differences(load(), live)
    assert not diff, ("The node interface differs from tests/fixtures/node_schema.json:\n  " + "\n  ".join(diff)
                      + "\nSaved workflows store widget values by position and links by slot: a renamed, removed or "
                        "reordered input or output breaks them. " + REGENERATE)


def test_every_output_has_a_display_name_and_a_tooltip(comfy):
    problems = []
    for nid, spec in sorted(pack_nodes(comfy.object_info()).items()):
        tips = spec.get("output_tooltips") or [None] * len(spec["output"])
        for i, (typ, name, tip) in enumerate(zip(spec["output"], spec["output_name"], tips)):
            if not (name or "").strip() or name.strip().lower() == str(typ).lower():
                problems.append(f"{nid} output {i} ({typ}) shows only its type {name!r}")
            if not (tip or "").strip():
                problems.append(f"{nid} output {i} ({typ}) '{name}' has no tooltip")
    assert not problems, ("\n".join(problems) + "\nGive it a human name and a hint: "
                          "io.<Type>.Output(id=..., display_name='best image', tooltip='...') in nodes/*.py.")


# ------------------------------------------------------------------------------------------------ command line
def main(argv=None):
    ap = argparse.ArgumentParser(description="Check (or with --update rewrite) tests/fixtures/node_schema.json "
                                             "against a live ComfyUI server.")
    ap.add_argument("--update", action="store_true", help="rewrite the snapshot from the live server")
    args = ap.parse_args(argv)
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    import host
    with host.Server(threads=1) as srv:
        live = build(srv.object_info())
    if args.update:
        write(live)
        print(f"wrote {os.path.relpath(SNAPSHOT, ROOT)} ({len(live)} nodes)")
        return 0
    diff = differences(load(), live)
    print("\n".join(diff) if diff else "snapshot up to date")
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
