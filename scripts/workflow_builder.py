"""Write UI-format ('save') ComfyUI workflows from a compact description, checked against /object_info.

The JSON files in workflows/ are the source of truth that users drag into ComfyUI; this builder only saves
typing when (re)creating them, and refuses a node whose widget values do not match the server's schema."""
import json

import host


class Workflow:
    def __init__(self, object_info):
        self.oi = object_info
        self.nodes, self.links = [], []

    def node(self, type_, widgets=(), pos=(0, 0), size=None, title=None, **wires):
        """Add a node; `widgets` in widget order (seed widgets get their 'fixed' control entry added);
        keyword arguments wire inputs: name=(source_node, output_slot)."""
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
            if host._is_widget(entry):
                if name in wires:
                    raise ValueError(f"{type_}.{name} is a widget; wiring widgets is not supported here")
                continue
            link = None
            if name in wires:
                src, slot = wires.pop(name)
                link = len(self.links) + 1
                self.links.append([link, src["id"], slot, nid, len(inputs), entry[0]])
                src["outputs"][slot]["links"].append(link)
            inputs.append({"name": name, "type": entry[0], "link": link})
        if wires:
            raise ValueError(f"{type_} has no inputs {sorted(wires)}")
        outputs = [{"name": n, "type": t, "links": [], "slot_index": i}
                   for i, (n, t) in enumerate(zip(spec["output_name"], spec["output"]))]
        node = {"id": nid, "type": type_, "pos": list(pos), "size": list(size or (320, 60 + 26 * max(len(values), len(inputs)))),
                "flags": {}, "order": nid - 1, "mode": 0, "inputs": inputs, "outputs": outputs,
                "properties": {"Node name for S&R": type_}, "widgets_values": values}
        if title:
            node["title"] = title
        self.nodes.append(node)
        return node

    def note(self, text, pos, size=(420, 400), title="Read me"):
        nid = len(self.nodes) + 1
        node = {"id": nid, "type": "Note", "pos": list(pos), "size": list(size), "flags": {}, "order": nid - 1,
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
