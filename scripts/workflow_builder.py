"""Write UI-format ('save') ComfyUI workflows from a compact description, checked against /object_info.

The JSON files in example_workflows/ are the source of truth that users drag into ComfyUI; this builder only
saves typing when (re)creating them. It refuses a node whose widget values do not match the server's schema
(count, and combo choices outside loaders' file lists), lays nodes out in columns, draws the groups around
their columns, marks every node with its pack (`cnr_id`/`ver`, as the frontend saves them), and saves a view
(`extra.ds`) that frames the whole graph in a VIEW_W × VIEW_H browser window below the tab bar and right of
the side bar."""
import json
import os
import re

import host

OUR_CNR_ID = "comfyui-flowsearch"
BYPASS = 4                                   # LiteGraph mode of a bypassed node (Ctrl+B in the UI)
VIEW_W, VIEW_H = 1600, 900                   # a laptop-sized canvas; bigger screens show more around it
VIEW_LEFT, VIEW_TOP, VIEW_BOTTOM, VIEW_MARGIN = 56, 96, 64, 24   # side bar; tab + action bar; zoom controls
GROUP_PAD, GROUP_TITLE = 14, 40              # group padding; group title bar (font 24)
GROUP_COLORS = {"Loaders": "#3f789e", "Search": "#8A8", "Outputs": "#b58b2a"}


def pack_version():
    with open(os.path.join(host.ROOT, "pyproject.toml")) as f:
        return re.search(r'^version\s*=\s*"([^"]+)"', f.read(), re.M).group(1)


def comfy_version():
    try:
        with open(os.path.join(host.COMFY_DIR, "comfyui_version.py")) as f:
            return re.search(r'"([^"]+)"', f.read()).group(1)
    except (OSError, AttributeError):
        return "0.3.75"


def combo_options(entry):
    """A combo input's choices (old form [[choices], {...}] or V3 form ["COMBO", {"options": [...]}]), else None."""
    if isinstance(entry[0], list):
        return entry[0]
    opts = entry[1] if len(entry) > 1 and isinstance(entry[1], dict) else {}
    return opts.get("options") if entry[0] == "COMBO" else None


def _default(entry):
    opts = entry[1] if len(entry) > 1 and isinstance(entry[1], dict) else {}
    if "default" in opts:
        return opts["default"]
    choices = combo_options(entry)
    return choices[0] if choices else None


class Workflow:
    GAP, TITLE = 40, 30   # gap between nodes/columns; the frontend draws titles above `pos`

    def __init__(self, object_info, col_widths=(400, 330, 340, 340, 400, 360), groups=None, top=120):
        """col_widths: each column's width; groups: {title: [columns]} framed by a LiteGraph group."""
        self.oi = object_info
        self.nodes, self.links = [], []
        self.col_widths = list(col_widths)
        self.groups = dict(groups or {})
        self.top = top
        self.col_y = {}
        self.versions = {"ours": pack_version(), "core": comfy_version()}

    def col_x(self, col):
        return 40 + sum(w + self.GAP + 2 * GROUP_PAD for w in self.col_widths[:col])

    def _place(self, col, height):
        """Next free position in column `col` (stacked top to bottom with room for the title bar)."""
        y = self.col_y.get(col, self.top)
        self.col_y[col] = y + height + self.TITLE + self.GAP
        return [self.col_x(col), y]

    def _properties(self, type_):
        module = self.oi[type_].get("python_module", "")
        if module.startswith("custom_nodes"):
            return {"cnr_id": OUR_CNR_ID, "ver": self.versions["ours"]}
        return {"cnr_id": "comfy-core", "ver": self.versions["core"]}

    def _check_combo(self, type_, name, entry, value):
        options = combo_options(entry)
        if options is None or "Loader" in type_:   # loaders list the files of this machine
            return
        if value not in options:
            raise ValueError(f"{type_}.{name}: {value!r} is not one of {options}")

    def node(self, type_, widgets=(), col=0, size=None, title=None, models=None, mode=0, **wires):
        """Add a node in column `col`; `widgets` in widget order, or a dict by name (schema defaults for the rest;
        seed widgets get their 'fixed' control entry added); keyword arguments wire inputs:
        name=(source_node, output_slot). `models`: the files a loader needs, [{name, url, directory}], for the
        frontend's missing-model dialog. `mode`: 0, or BYPASS."""
        nid = len(self.nodes) + 1
        spec = self.oi[type_]
        order = host._input_order(spec)
        widget_inputs = [(n, e) for n, e in order if host._is_widget(e)]
        if isinstance(widgets, dict):    # by name; the schema's default for the others
            unknown = sorted(set(widgets) - {n for n, _ in widget_inputs})
            if unknown:
                raise ValueError(f"{type_} has no widgets {unknown}")
            widgets = [widgets[n] if n in widgets else _default(e) for n, e in widget_inputs]
        if len(widgets) != len(widget_inputs):
            raise ValueError(f"{type_}: {len(widgets)} widget values for {[n for n, _ in widget_inputs]}")
        values = []
        for value, (name, entry) in zip(widgets, widget_inputs):
            self._check_combo(type_, name, entry, value)
            values.append(value)
            if host._has_control(entry):
                values.append("fixed")
        inputs = []
        for name, entry in order:
            widget = host._is_widget(entry)
            if widget and name not in wires:
                continue
            link = None
            kind = "COMBO" if isinstance(entry[0], list) else entry[0]
            if name in wires:
                src, slot = wires.pop(name)
                link = len(self.links) + 1
                self.links.append([link, src["id"], slot, nid, len(inputs), kind])
                src["outputs"][slot]["links"].append(link)
            inputs.append({"name": name, "type": kind, "link": link, **({"widget": {"name": name}} if widget else {})})
        if wires:
            raise ValueError(f"{type_} has no inputs {sorted(wires)}")
        outputs = [{"name": n, "type": t, "links": [], "slot_index": i}
                   for i, (n, t) in enumerate(zip(spec["output_name"], spec["output"]))]
        width = self.col_widths[col]
        size = list(size or (width, 46 + 26 * (len(values) + len(inputs)) + 26 * max(0, len(outputs) - len(inputs))))
        props = {**self._properties(type_), "Node name for S&R": type_}
        if models:
            props["models"] = [dict(m) for m in models]
        node = {"id": nid, "type": type_, "pos": self._place(col, size[1]), "size": size, "flags": {},
                "order": nid - 1, "mode": mode, "inputs": inputs, "outputs": outputs, "properties": props,
                "widgets_values": values, "_col": col}
        if title:
            node["title"] = title
        self.nodes.append(node)
        return node

    def markdown(self, text, col=0, size=(400, 600), title="Read me"):
        """A MarkdownNote (frontend-only; never sent to the server)."""
        nid = len(self.nodes) + 1
        node = {"id": nid, "type": "MarkdownNote", "pos": self._place(col, size[1]), "size": list(size),
                "flags": {}, "order": nid - 1, "mode": 0, "inputs": [], "outputs": [], "title": title,
                "properties": {}, "widgets_values": [text], "color": "#432", "bgcolor": "#653", "_col": col}
        self.nodes.append(node)
        return node

    # ------------------------------------------------------------------------------------------- layout
    def _group_json(self):
        out = []
        for gid, (title, cols) in enumerate(self.groups.items(), 1):
            members = [n for n in self.nodes if n["_col"] in cols]
            if not members:
                continue
            x0 = min(n["pos"][0] for n in members) - GROUP_PAD
            y0 = min(n["pos"][1] for n in members) - self.TITLE - GROUP_PAD - GROUP_TITLE
            x1 = max(n["pos"][0] + n["size"][0] for n in members) + GROUP_PAD
            y1 = max(n["pos"][1] + n["size"][1] for n in members) + GROUP_PAD
            out.append({"id": gid, "title": title, "bounding": [x0, y0, x1 - x0, y1 - y0],
                        "color": GROUP_COLORS.get(title, "#3f789e"), "font_size": 24, "flags": {}})
        return out

    def _view(self, groups):
        """extra.ds (scale, offset) that shows every node and group inside the VIEW_W × VIEW_H window."""
        boxes = [(n["pos"][0], n["pos"][1] - self.TITLE, n["pos"][0] + n["size"][0], n["pos"][1] + n["size"][1])
                 for n in self.nodes]
        boxes += [(g["bounding"][0], g["bounding"][1], g["bounding"][0] + g["bounding"][2],
                   g["bounding"][1] + g["bounding"][3]) for g in groups]
        x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
        x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
        w = VIEW_W - VIEW_LEFT - 2 * VIEW_MARGIN
        h = VIEW_H - VIEW_TOP - VIEW_BOTTOM - 2 * VIEW_MARGIN
        s = min(w / (x1 - x0), h / (y1 - y0), 1.0)
        left = VIEW_LEFT + VIEW_MARGIN + (w - s * (x1 - x0)) / 2
        top = VIEW_TOP + VIEW_MARGIN
        return {"scale": round(s, 4), "offset": [round(left / s - x0, 1), round(top / s - y0, 1)]}

    def to_json(self):
        groups = self._group_json()
        nodes = [{k: v for k, v in n.items() if k != "_col"} for n in self.nodes]
        return {"last_node_id": len(self.nodes), "last_link_id": len(self.links), "nodes": nodes,
                "links": self.links, "groups": groups, "config": {},
                "extra": {"ds": self._view(groups)}, "version": 0.4}

    def save(self, path):
        with open(path, "w") as f:
            json.dump(self.to_json(), f, indent=1, ensure_ascii=False)
            f.write("\n")
