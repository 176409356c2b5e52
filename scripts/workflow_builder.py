"""Write UI-format ('save') ComfyUI workflows from a compact description, checked against /object_info.

The JSON files in workflows/ are the source of truth that users drag into ComfyUI; this builder only saves
typing when (re)creating them, and refuses a node whose widget values do not match the server's schema."""
import json

import host


class Workflow:
    COL_W, GAP, TITLE = 450, 30, 30   # column pitch; vertical gap; the frontend draws titles above `pos`

    def __init__(self, object_info):
        self.oi = object_info
        self.nodes, self.links = [], []
        self.col_y = {}

    def _place(self, col, height, width=None):
        """Next free position in column `col` (stacked top to bottom with room for the title bar)."""
        y = self.col_y.get(col, 60)
        self.col_y[col] = y + height + self.TITLE + self.GAP
        return (40 + col * self.COL_W, y)

    def node(self, type_, widgets=(), col=0, size=None, title=None, **wires):
        """Add a node in column `col`; `widgets` in widget order (seed widgets get their 'fixed' control entry
        added); keyword arguments wire inputs: name=(source_node, output_slot)."""
        nid = len(self.nodes) + 1
        spec = self.oi[type_]
        order = host._input_order(spec)
        widget_inputs = [(n, e) for n, e in order if host._is_widget(e)]
        if len(widgets) != len(widget_inputs):
            raise ValueError(f"{type_}: {len(widgets)} widget values for {[n for n, _ in widget_inputs]}")
        values = []
        for value, (name, entry) in zip(widgets, widget_inputs):
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
        size = list(size or (340, 46 + 26 * (len(values) + len(inputs)) + 26 * max(0, len(outputs) - len(inputs))))
        node = {"id": nid, "type": type_, "pos": list(self._place(col, size[1])), "size": size,
                "flags": {}, "order": nid - 1, "mode": 0, "inputs": inputs, "outputs": outputs,
                "properties": {"Node name for S&R": type_}, "widgets_values": values}
        if title:
            node["title"] = title
        self.nodes.append(node)
        return node

    def note(self, text, col=0, size=(420, 400), title="Read me"):
        nid = len(self.nodes) + 1
        node = {"id": nid, "type": "Note", "pos": list(self._place(col, size[1])), "size": list(size), "flags": {}, "order": nid - 1,
                "mode": 0, "inputs": [], "outputs": [], "title": title, "properties": {}, "widgets_values": [text],
                "color": "#432", "bgcolor": "#653"}
        self.nodes.append(node)
        return node

    def to_json(self):
        return {"last_node_id": len(self.nodes), "last_link_id": len(self.links), "nodes": self.nodes,
                "links": self.links, "groups": [], "config": {}, "extra": {"ds": {"scale": 0.8, "offset": [0, 0]}},
                "version": 0.4}

    def save(self, path):
        with open(path, "w") as f:
            json.dump(self.to_json(), f, indent=1, ensure_ascii=False)
            f.write("\n")
