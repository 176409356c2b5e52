"""Run ComfyUI (from .build/, made by scripts/setup.sh) as a real headless server, talk to it, and turn the
UI-format workflows in example_workflows/ into API prompts. Used by the tests, the demo and the benchmarks.

    with host.Server() as srv:                      # starts main.py --cpu on a free loopback port
        api = host.ui_to_api(host.load_workflow(host.workflow_path("flux_schnell_vp_sde")), srv.object_info())
        api = host.substitute_loaders(api)          # tiny stand-ins for files that cannot exist here
        entry = srv.run(api)                        # history entry; raises ComfyError on a node error

Loader substitution rule (the only change made to a shipped workflow before it runs here):
    UNETLoader            -> FlowSearchTestTinyFluxLoader(unet_name="flux_tiny_h64.safetensors")
    DualCLIPLoader        -> FlowSearchTestTextEncoder (hash-seeded FLUX-shaped conditioning for CLIPTextEncode)
    VAELoader             -> VAELoader(vae_name="taef1_random.safetensors")   (a tiny 16-channel TAESD)
    FlowSearch reward loaders -> the same node on the tiny random-weight folder of its family
                             (tests/fixtures/tiny_rewards.py LOADER_FOLDERS, or TINY_BY_NAME when the saved
                             folder names another family, e.g. instructblip-*; a counting loader's SAM -> tiny-sam)
Every other node, ours and ComfyUI's, runs exactly as saved. Search workflows additionally go through
`scale_for_cpu` (latent 64 px, NFE budget ≤ 48): the CPU cannot decode hundreds of 1024 px candidates.
"""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, ".build")
VENV_PY = os.path.join(BUILD, "venv", "bin", "python")
COMFY_DIR = os.path.join(BUILD, "comfyui")
BASE_DIR = os.path.join(BUILD, "base")

VIRTUAL_NODES = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}

# The shipped workflows (example_workflows/, which ComfyUI's template browser lists under this pack): a short
# key used by scripts and tests -> the file name, which is also the title the template browser shows. The
# numbers give the order (starter and playground first).
WORKFLOW_DIR = os.path.join(ROOT, "example_workflows")
WORKFLOW_FILES = {
    "starter_schnell_clip": "01 Start here - FLUX schnell 12GB - CLIP score search.json",
    "starter_schnell_aesthetic": "02 FLUX schnell 16GB - aesthetic search 768px.json",
    "playground_rbf_counting": "03 Playground (no download) - RBF counting.json",
    "playground_bon_counting": "04 Playground (no download) - Best-of-N counting.json",
    "flux_schnell_vp_sde": "05 FLUX schnell - VP-SDE sampler, no search.json",
    "rbf_vqascore": "06 Paper 48GB - RBF with VQAScore.json",
    "bon_baseline": "07 Paper 48GB - Best-of-N baseline.json",
    "smc_vqascore": "08 Paper 48GB - SMC with VQAScore.json",
    "svdd_vqascore": "09 Paper 48GB - SVDD with VQAScore.json",
    "sop_vqascore": "10 Paper 48GB - Search over Paths with VQAScore.json",
    "rbf_counting": "11 Paper - RBF counting airplanes and camels.json",
    "rbf_dps_aesthetic": "12 Paper - RBF aesthetic with gradient guidance.json",
    "score_only": "13 Score images with held-out rewards.json",
    "flux_dev_rbf": "14 FLUX dev - RBF search sampler with PickScore.json",
}


def workflow_path(key):
    """Path of a shipped workflow from its short key (WORKFLOW_FILES), e.g. workflow_path("rbf_vqascore")."""
    if key not in WORKFLOW_FILES:
        raise ValueError(f"unknown workflow {key!r}: use one of {sorted(WORKFLOW_FILES)}")
    return os.path.join(WORKFLOW_DIR, WORKFLOW_FILES[key])


SUBSTITUTIONS = {
    "UNETLoader": ("FlowSearchTestTinyFluxLoader", {"unet_name": "flux_tiny_h64.safetensors"}),
    "DualCLIPLoader": ("FlowSearchTestTextEncoder", {"tokens": 16, "context_dim": 4096, "pooled_dim": 768}),
    "VAELoader": ("VAELoader", {"vae_name": "taef1_random.safetensors"}),
}


# a saved reward folder whose name names another family of the same loader gets that family's tiny model
TINY_BY_NAME = [("instructblip", "tiny-instructblip-flant5"), ("blip2", "tiny-blip2-flant5"),
                ("qwen", "tiny-qwen2.5-vl"), ("llava", "tiny-llava"), ("owl", "tiny-owlv2")]


def _reward_folders():
    """Reward loader node id -> (folder input, tiny folder under models/rewards), from tests/fixtures/tiny_rewards.py."""
    import importlib.util
    path = os.path.join(ROOT, "tests", "fixtures", "tiny_rewards.py")
    spec = importlib.util.spec_from_file_location("flowsearch_tiny_rewards", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return dict(mod.LOADER_FOLDERS)


class ComfyError(RuntimeError):
    """A prompt was rejected (validation) or failed while executing; the message is ComfyUI's own."""

    def __init__(self, message, details=None):
        super().__init__(message)
        self.details = details


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    """Minimal stdlib client: /object_info, /prompt, /history, /interrupt, /queue."""

    def __init__(self, port, host="127.0.0.1"):
        self.url = f"http://{host}:{port}"
        self._object_info = None

    def request(self, path, data=None, timeout=60):
        body = None if data is None else json.dumps(data).encode()
        req = urllib.request.Request(self.url + path, data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                raw = r.read()
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                payload = json.loads(raw)
            except ValueError:
                payload = raw.decode(errors="replace")
            raise ComfyError(_describe_rejection(payload), payload) from None
        return json.loads(raw) if raw else None

    def object_info(self, refresh=False):
        if self._object_info is None or refresh:
            self._object_info = self.request("/object_info")
        return self._object_info

    def queue(self, prompt, client_id=None):
        res = self.request("/prompt", {"prompt": prompt, "client_id": client_id or uuid.uuid4().hex})
        if res.get("node_errors"):
            raise ComfyError(_describe_rejection(res), res)
        return res["prompt_id"]

    def history(self, prompt_id):
        return (self.request(f"/history/{prompt_id}") or {}).get(prompt_id)

    def wait(self, prompt_id, timeout=600, poll=0.05):
        end = time.time() + timeout
        while time.time() < end:
            entry = self.history(prompt_id)
            if entry and (entry.get("status", {}).get("completed") or entry.get("status", {}).get("status_str") == "error"):
                return entry
            time.sleep(poll)
        raise TimeoutError(f"prompt {prompt_id} did not finish in {timeout} s")

    def run(self, prompt, timeout=600):
        """Queue, wait, and return the history entry; raise ComfyError with the node's message on failure."""
        t0 = time.time()
        entry = self.wait(self.queue(prompt), timeout)
        entry["wall_s"] = time.time() - t0
        status = entry.get("status", {})
        if status.get("status_str") != "success":
            msgs = {m[0]: m[1] for m in status.get("messages", [])}
            err = msgs.get("execution_error") or msgs.get("execution_interrupted") or {}
            kind = "interrupted" if "execution_interrupted" in msgs else "failed"
            raise ComfyError(f"prompt {kind} in node {err.get('node_id')} ({err.get('node_type')}): "
                             f"{err.get('exception_message', '').strip()}", entry)
        return entry

    def interrupt(self):
        self.request("/interrupt", {})

    def system_stats(self):
        return self.request("/system_stats")


def _describe_rejection(payload):
    if not isinstance(payload, dict):
        return str(payload)[:2000]
    parts = [str((payload.get("error") or {}).get("message", "prompt rejected"))]
    for nid, ne in (payload.get("node_errors") or {}).items():
        for e in ne.get("errors", []):
            parts.append(f"node {nid} ({ne.get('class_type')}): {e.get('message')}: {e.get('details')}")
    return "; ".join(parts)


class Server(Client):
    """A real ComfyUI server process on a free loopback port (context manager; stops by pid)."""

    def __init__(self, port=None, base=BASE_DIR, log_path=None, extra_args=(), threads=None, timeout=180):
        port = port or free_port()
        super().__init__(port)
        self.port, self.base, self.extra_args, self.timeout = port, base, list(extra_args), timeout
        self.log_path = log_path or os.path.join(BUILD, "logs", f"server_{port}.log")
        self.threads = threads
        self.proc = None

    def start(self):
        for exe, what in ((VENV_PY, "venv"), (os.path.join(COMFY_DIR, "main.py"), "ComfyUI tree")):
            if not os.path.exists(exe):
                raise RuntimeError(f"{what} missing ({exe}): run `bash scripts/setup.sh` (or `make setup`) first")
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        for d in ("custom_nodes", "input", "output", "temp", "user"):
            os.makedirs(os.path.join(self.base, d), exist_ok=True)
        env = dict(os.environ, PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        if self.threads:
            env["OMP_NUM_THREADS"] = str(self.threads)
        cmd = [VENV_PY, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
               "--base-directory", self.base, "--disable-auto-launch", "--database-url", "sqlite:///:memory:",
               "--use-pytorch-cross-attention", *self.extra_args]
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, cwd=COMFY_DIR, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        end = time.time() + self.timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with {self.proc.returncode} at start-up:\n{self.log_tail()}")
            try:
                self.system_stats()
                return self
            except (OSError, ComfyError):
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"ComfyUI did not answer in {self.timeout} s:\n{self.log_tail()}")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if getattr(self, "_log", None):
            self._log.close()

    def log_tail(self, n=80):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return "(no log)"

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# ---------------------------------------------------------------------------------------------- UI → API
def _input_order(spec):
    inputs = spec.get("input", {})
    order = spec.get("input_order") or {k: list(v) for k, v in inputs.items()}
    out = []
    for group in ("required", "optional"):
        for name in order.get(group, []):
            out.append((name, inputs.get(group, {}).get(name)))
    return out


def _is_widget(entry):
    if entry is None:
        return False
    kind = entry[0]
    return isinstance(kind, list) or kind in WIDGET_TYPES


def _has_control(entry):
    opts = entry[1] if len(entry) > 1 and isinstance(entry[1], dict) else {}
    return bool(opts.get("control_after_generate"))


def ui_to_api(workflow, object_info):
    """Convert a UI ('save') workflow to an API prompt as the frontend does: widget values in the order of
    the node's widget inputs (skipping control_after_generate entries), links followed through Reroutes,
    Notes and muted nodes dropped. Raises ValueError on node types the server does not know."""
    nodes = {n["id"]: n for n in workflow["nodes"]}
    links = {l[0]: l for l in workflow.get("links", [])}
    missing = sorted({n["type"] for n in nodes.values() if n["type"] not in object_info and n["type"] not in VIRTUAL_NODES})
    if missing:
        raise ValueError(f"workflow uses node types this server does not have: {missing}")

    def source(link_id):
        _, origin, slot, *_ = links[link_id]
        node = nodes[origin]
        if node["type"] == "PrimitiveNode":  # the frontend sends the primitive's value, not a link
            return node["widgets_values"][0]
        if node["type"] == "Reroute":
            return source(node["inputs"][0]["link"])
        if node.get("mode") == 4:
            raise ValueError(f"node {origin} ({node['type']}) is bypassed; un-bypass or remove it before running")
        return [str(origin), slot]

    prompt = {}
    for nid, node in nodes.items():
        if node["type"] in VIRTUAL_NODES or node.get("mode", 0) in (2, 4):
            continue
        linked = {i["name"]: i["link"] for i in node.get("inputs", []) if i.get("link") is not None}
        values = node.get("widgets_values", [])
        inputs, k = {}, 0
        for name, entry in _input_order(object_info[node["type"]]):
            if _is_widget(entry):
                if isinstance(values, dict):
                    value = values.get(name)
                else:
                    value = values[k] if k < len(values) else None
                    k += 2 if _has_control(entry) else 1
                if name not in linked and value is not None:
                    inputs[name] = value
            if name in linked:
                inputs[name] = source(linked[name])
        prompt[str(nid)] = {"class_type": node["type"], "inputs": inputs,
                            "_meta": {"title": node.get("title") or node["type"]}}
    return prompt


def substitute_loaders(prompt, substitutions=None, reward_folders=None):
    """Apply the documented loader substitution (module docstring) to an API prompt; returns a new prompt."""
    subs = SUBSTITUTIONS if substitutions is None else substitutions
    rewards = _reward_folders() if reward_folders is None else reward_folders
    out = json.loads(json.dumps(prompt))
    for node in out.values():
        ct = node["class_type"]
        if ct in subs:
            new_type, new_inputs = subs[ct]
            if new_type == ct:
                node["inputs"].update(new_inputs)
            else:  # loaders take no wires: the stand-in gets its own inputs only
                node["class_type"], node["inputs"] = new_type, dict(new_inputs)
        elif ct in rewards:
            field, folder = rewards[ct]
            saved = str(node["inputs"].get(field, "")).lower()
            node["inputs"][field] = next((tiny for key, tiny in TINY_BY_NAME if key in saved), folder)
            if node["inputs"].get("sam", "none") != "none":  # counting: optional SAM de-duplication
                node["inputs"]["sam"] = "tiny-sam"
    return out


# CPU scale rule (tests and demo only): the tiny stand-ins are cheap, but decoding every candidate at 1024 px
# on two CPU cores is not (≈14 s per image with the tiny TAESD). Only these compute knobs change.
CPU_SCALE = {"EmptySD3LatentImage": {"width": 64, "height": 64}, "EmptyLatentImage": {"width": 64, "height": 64}}
CPU_MAX_NFE = 48


def scale_for_cpu(prompt, pixels=64, max_nfe=CPU_MAX_NFE):
    """Shrink empty latents to `pixels` and cap every `nfe_budget` at `max_nfe` (other inputs unchanged).
    Playground graphs are CPU-sized already and run as saved."""
    out = json.loads(json.dumps(prompt))
    if any(n["class_type"] == "FlowSearchPlaygroundLoader" for n in out.values()):
        return out
    for node in out.values():
        if node["class_type"] in CPU_SCALE:
            node["inputs"].update({k: pixels for k in CPU_SCALE[node["class_type"]]})
        budget = node["inputs"].get("nfe_budget")
        if isinstance(budget, int) and budget > max_nfe:
            node["inputs"]["nfe_budget"] = max_nfe
    return out


def load_workflow(path):
    with open(path) as f:
        return json.load(f)


def output_images(entry):
    """(filename, subfolder, type) of every image an executed prompt produced."""
    out = []
    for node_out in entry.get("outputs", {}).values():
        for img in node_out.get("images", []):
            out.append((img["filename"], img.get("subfolder", ""), img.get("type", "output")))
    return out


if __name__ == "__main__":  # tiny manual check: python scripts/host.py "example_workflows/<file>.json"
    with Server() as srv:
        wf = ui_to_api(load_workflow(sys.argv[1]), srv.object_info())
        print(json.dumps(srv.run(substitute_loaders(wf)).get("outputs", {}), indent=1))
