"""Load UI-format workflows in the real ComfyUI web frontend (the comfyui-frontend-package the server serves)
inside headless Debian Chromium, driven over the DevTools protocol (aiohttp websocket; no extra packages).

    with host.Server(threads=1) as srv, Browser() as br:
        br.open_ui(srv.port)                               # navigate, wait for the node definitions
        rep = br.check_workflow(workflow, "x.json", screenshot="test-artifacts/ui/x.png")
        rep["missing_node_types"], rep["node_errors"], rep["console_errors"], rep["prompt"]

A report holds: the workflow's node types that LiteGraph has not registered (frontend-only nodes such as Note,
MarkdownNote and Reroute excepted), the missing types the frontend itself collected while loading (seen
through an `afterConfigureGraph` extension hook) and any dialog it opened, the rendered nodes with
`has_errors`, console errors and uncaught exceptions since the load (known offline noise filtered out), and
`app.graphToPrompt().output` — the API prompt the frontend would queue — for comparison with
`host.ui_to_api` (`compare_prompts`), and the saved view's geometry (`view()`: the visible canvas and every
node's and group's screen rectangle). `queue_from_ui(until)` presses Run and waits for the frontend's
execution_success; `summaries()` reads what web/flowsearch.js shows on the nodes after a run.

CLI (starts its own server unless --port is given; exits 1 on any problem):
    .build/venv/bin/python scripts/ui_browser.py example_workflows/*.json --out test-artifacts/ui
    .build/venv/bin/python scripts/ui_browser.py "example_workflows/05 FLUX schnell - VP-SDE sampler, no search.json" \
        --shot docs/screenshot_vp_sde.png --compact
"""
import argparse
import asyncio
import base64
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import aiohttp

# Flags needed on an offline, GPU-less, root machine (docs: Chromium must never try to reach the network).
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
         "--disable-dev-shm-usage", "--password-store=basic", "--use-mock-keychain"]

# Node types that exist only in the frontend (never sent to the server, never in /object_info).
FRONTEND_ONLY = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}

# Console noise of an offline test machine that says nothing about the workflow or our nodes (matched against
# "log: <text> <url>" / "console.error: <args>" / "exception: <description>").
IGNORED_CONSOLE = [
    # files a bare server does not have: user.css, favicon, saved-workflow listings, templates, template thumbnails
    re.compile(r"status of 404 \(Not Found\) https?://[^ ]*/(user\.css|favicon\.ico|api/userdata\?dir=|"
               r"api/userdata/comfy\.templates\.json|templates/index\.json|api/workflow_templates/[^ ]+\.(jpg|webp|png))"),
    # no internet: release check, node registry look-ups for badges, model-size probes
    re.compile(r"net::ERR_[A-Z_]+ https?://(?!127\.0\.0\.1|localhost)"),
    re.compile(r"Error loading core workflow templates"),
    re.compile(r"Error fetching file size: TypeError: Failed to fetch"),  # missing-models dialog probes URLs
    # the known harmless TypeError of a settings onChange handler at start-up (frontend 1.32.9)
    re.compile(r"Cannot read properties of undefined \(reading 'id'\)\s+at onChange \(\S+/assets/index-"),
]

JS_INSTALL_HOOK = r"""(() => {
  if (window.__fsHook) return true;
  window.__fsHook = {missing: null};
  app.registerExtension({
    name: 'FlowSearch.UiBrowserTest',
    afterConfigureGraph(missing) {
      window.__fsHook.missing = (missing || []).map(m => typeof m === 'string' ? m : m.type);
    },
  });
  return true;
})()"""

JS_DIALOGS = r"""[...document.querySelectorAll('.p-dialog, [role=dialog]')]
  .filter(d => d.offsetParent !== null || d.getClientRects().length)
  .map(d => `[${d.getAttribute('aria-labelledby') || d.id || 'dialog'}] ` + d.innerText.trim().replace(/\s+/g, ' ').slice(0, 400))"""

# The frontend warns about model files absent from the server: expected on a test server (real model files
# cannot exist here; the loader substitution happens later), so not a failure by itself.
MISSING_MODELS_DIALOG = "[global-missing-models"  # aria-labelledby="global-missing-models-warning"

JS_CLOSE_DIALOGS = r"""(() => {
  let n = 0;
  for (const b of document.querySelectorAll('.p-dialog .p-dialog-close-button, .p-dialog-header-close')) { b.click(); n++; }
  return n;
})()"""

JS_NODES = r"""app.graph.nodes.map(n => ({
  id: n.id, type: n.type, title: n.title, has_errors: !!n.has_errors, mode: n.mode,
  registered: n.type in LiteGraph.registered_node_types,
  pos: [Math.round(n.pos[0]), Math.round(n.pos[1])], size: [Math.round(n.size[0]), Math.round(n.size[1])],
}))"""

JS_FIT = r"""((margin, fit, hideMinimap) => {
  const nodes = app.graph.nodes;
  const c = app.canvas, el = c.canvas;
  for (const m of document.querySelectorAll('.minimap-main-container')) m.style.visibility = hideMinimap ? 'hidden' : '';
  if (fit && nodes.length) {
    const TH = LiteGraph.NODE_TITLE_HEIGHT || 30;
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (const n of nodes) {
      x0 = Math.min(x0, n.pos[0]); y0 = Math.min(y0, n.pos[1] - TH);
      x1 = Math.max(x1, n.pos[0] + n.size[0]); y1 = Math.max(y1, n.pos[1] + n.size[1]);
    }
    // the visible canvas: below the tab bar / action bar, right of the side tool bar, above the zoom controls
    const r = el.getBoundingClientRect();
    const boxes = sel => [...document.querySelectorAll(sel)].map(e => e.getBoundingClientRect()).filter(b => b.width > 0 && b.height > 0);
    const top = Math.max(r.top, ...boxes('.workflow-tabs-container, .actionbar-container, .subgraph-breadcrumb')
      .filter(b => b.bottom < r.height / 4).map(b => b.bottom));
    const left = Math.max(r.left, ...boxes('.side-tool-bar-container').filter(b => b.width < r.width / 4).map(b => b.right));
    const bottom = r.bottom - 56;
    const W = r.right - left - 2 * margin, H = bottom - top - 2 * margin;
    const s = Math.min(W / (x1 - x0), H / (y1 - y0), 1.0);
    c.ds.scale = s;
    c.ds.offset = [(left + margin + (W - s * (x1 - x0)) / 2) / s - x0, (top + margin + (H - s * (y1 - y0)) / 2) / s - y0];
  }
  c.deselectAll && c.deselectAll();
  app.graph.setDirtyCanvas(true, true);
  c.draw(true, true);
  return {scale: c.ds.scale, offset: c.ds.offset};
})"""


# Screen rectangles of the canvas area not covered by the frontend's bars, and of every node (title bar
# included) and group under the current view (app.canvas.ds): "does the saved view show the whole graph?"
JS_VIEW = r"""(() => {
  const c = app.canvas, el = c.canvas, r = el.getBoundingClientRect(), ds = c.ds;
  const boxes = sel => [...document.querySelectorAll(sel)].map(e => e.getBoundingClientRect()).filter(b => b.width > 0 && b.height > 0);
  const top = Math.max(r.top, ...boxes('.workflow-tabs-container, .actionbar-container, .subgraph-breadcrumb')
    .filter(b => b.bottom < r.height / 4).map(b => b.bottom));
  const left = Math.max(r.left, ...boxes('.side-tool-bar-container').filter(b => b.width < r.width / 4).map(b => b.right));
  const TH = LiteGraph.NODE_TITLE_HEIGHT || 30;
  const screen = (x, y, w, h) => [(x + ds.offset[0]) * ds.scale, (y + ds.offset[1]) * ds.scale, w * ds.scale, h * ds.scale];
  return {
    visible: [left, top, r.right - left, r.bottom - top], scale: ds.scale,
    nodes: app.graph.nodes.map(n => ({id: n.id, type: n.type, rect: screen(n.pos[0], n.pos[1] - TH, n.size[0], n.size[1] + TH)})),
    groups: (app.graph.groups || app.graph._groups || []).map(g => ({title: g.title, rect: screen(...g._bounding || g.bounding)})),
  };
})()"""

# Watch the next run through the frontend's own API events (execution_success / execution_error).
JS_WATCH_RUN = r"""(() => {
  const api = window.comfyAPI.api.api;
  window.__fsRun = {done: false, error: null};
  api.addEventListener('execution_success', () => { window.__fsRun.done = true }, {once: true});
  api.addEventListener('execution_error', e => { window.__fsRun.error = JSON.stringify(e.detail).slice(0, 2000) }, {once: true});
  return true;
})()"""

# The text web/flowsearch.js shows on each node after a run ({node id: text}).
JS_SUMMARIES = r"""Object.fromEntries(app.graph.nodes
  .map(n => [n.id, n.widgets?.find(w => w.name === 'flowsearch_summary')?.element?.textContent])
  .filter(([, t]) => t))"""


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    for path in ("/usr/bin/chromium", "/usr/lib/chromium/chromium"):
        if os.path.exists(path):
            return path
    return None


def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_node_count(url):
    import urllib.request
    try:
        with urllib.request.urlopen(url + "/api/object_info", timeout=60) as r:
            return len(json.loads(r.read()))
    except (OSError, ValueError):
        return 0


def _mark_tutorial_done(url):
    import urllib.request
    key = "/api/settings/Comfy.TutorialCompleted"
    try:
        with urllib.request.urlopen(url + key, timeout=10) as r:
            if json.loads(r.read() or b"null") is True:
                return
        req = urllib.request.Request(url + key, data=b"true", method="POST",
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=10).close()
    except OSError:
        pass  # the dialog is then closed by JS_CLOSE_DIALOGS


def is_ignored(text):
    return any(p.search(text) for p in IGNORED_CONSOLE)


class _CDP:
    def __init__(self, ws):
        self.ws, self.n, self.pending, self.events = ws, 0, {}, []

    async def reader(self):
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            if "id" in data and data["id"] in self.pending:
                fut = self.pending.pop(data["id"])
                if not fut.done():
                    fut.set_result(data)
            else:
                self.events.append(data)

    async def send(self, method, params=None, session=None, timeout=60):
        self.n += 1
        fut = asyncio.get_running_loop().create_future()
        self.pending[self.n] = fut
        msg = {"id": self.n, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        await self.ws.send_str(json.dumps(msg))
        res = await asyncio.wait_for(fut, timeout)
        if "error" in res:
            raise RuntimeError(f"{method}: {res['error']}")
        return res.get("result", {})


class BrowserError(RuntimeError):
    pass


class Browser:
    """One headless Chromium with one page on the ComfyUI UI (context manager; stops its own process by pid).
    Synchronous API over a private asyncio loop, so it can live in a pytest fixture."""

    def __init__(self, chromium=None, width=1600, height=1000, log_path=None, timeout=90):
        self.chromium = chromium or find_chromium()
        self.width, self.height, self.timeout = width, height, timeout
        self.log_path = log_path
        self.proc = self.udd = self.sid = None
        self._loop = asyncio.new_event_loop()
        self._http = self._ws = self._cdp = self._reader = None
        self.info = {}

    # -------------------------------------------------------------------------------------- lifecycle
    def _run(self, coro):
        return self._loop.run_until_complete(coro)

    def start(self):
        if not self.chromium:
            raise BrowserError("chromium not found: run `bash scripts/setup.sh` (apt-get install chromium)")
        self.udd = tempfile.mkdtemp(prefix="flowsearch-chromium-")
        cdp_port = _free_port()
        log = open(self.log_path, "w") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen([self.chromium, *FLAGS, f"--window-size={self.width},{self.height}",
                                      f"--user-data-dir={self.udd}", f"--remote-debugging-port={cdp_port}",
                                      "about:blank"], stdout=subprocess.DEVNULL, stderr=log)
        if log is not subprocess.DEVNULL:
            log.close()
        try:
            self._run(self._connect(cdp_port))
        except BaseException:
            self.close()
            raise
        return self

    async def _connect(self, cdp_port):
        t0 = time.time()
        self._http = aiohttp.ClientSession()
        ver = None
        while time.time() - t0 < self.timeout:
            if self.proc.poll() is not None:
                raise BrowserError(f"chromium exited with {self.proc.returncode} at start-up (log: {self.log_path})")
            try:
                async with self._http.get(f"http://127.0.0.1:{cdp_port}/json/version") as r:
                    ver = await r.json()
                    break
            except (aiohttp.ClientError, OSError):
                await asyncio.sleep(0.1)
        if ver is None:
            raise BrowserError(f"chromium DevTools did not answer in {self.timeout} s")
        self.info.update(browser=ver.get("Browser"), start_s=round(time.time() - t0, 2))
        self._ws = await self._http.ws_connect(ver["webSocketDebuggerUrl"], max_msg_size=0)
        self._cdp = _CDP(self._ws)
        self._reader = asyncio.ensure_future(self._cdp.reader())
        tid = (await self._cdp.send("Target.createTarget", {"url": "about:blank"}))["targetId"]
        self.sid = (await self._cdp.send("Target.attachToTarget", {"targetId": tid, "flatten": True}))["sessionId"]
        for dom in ("Page", "Runtime", "Log"):
            await self._cdp.send(f"{dom}.enable", {}, self.sid)
        # the "Nodes 2.0" announcement banner remembers its dismissal in localStorage (fresh profile: not yet)
        await self._cdp.send("Page.addScriptToEvaluateOnNewDocument",
                             {"source": "try { localStorage.setItem('vueNodesBannerDismissed', 'true') } catch (e) {}"},
                             self.sid)
        await self._cdp.send("Emulation.setDeviceMetricsOverride", {"width": self.width, "height": self.height,
                                                                     "deviceScaleFactor": 1, "mobile": False}, self.sid)

    def close(self):
        async def _close():
            if self._reader:
                self._reader.cancel()
            if self._ws is not None:
                await self._ws.close()
            if self._http is not None:
                await self._http.close()
        try:
            if not self._loop.is_closed():
                self._run(_close())
        except Exception:
            pass
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.udd:
            shutil.rmtree(self.udd, ignore_errors=True)
        if not self._loop.is_closed():
            self._loop.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # -------------------------------------------------------------------------------------- primitives
    def evaluate(self, expr, timeout=60):
        """Evaluate a JS expression in the page (promises awaited); return its JSON value."""
        return self._run(self._evaluate(expr, timeout))

    async def _evaluate(self, expr, timeout=60):
        r = await self._cdp.send("Runtime.evaluate", {"expression": expr, "awaitPromise": True,
                                                     "returnByValue": True}, self.sid, timeout)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise BrowserError(f"JS error: {d.get('exception', {}).get('description') or d.get('text')}"[:2000])
        return r["result"].get("value")

    def settle(self, frames=2):
        """Let the page process pending work and paint `frames` animation frames (and flush CDP events)."""
        self.evaluate("new Promise(r => { let k = %d; const f = () => (--k > 0 ? requestAnimationFrame(f) : r(true));"
                      " requestAnimationFrame(f); setTimeout(() => r(true), 1000); })" % frames)

    def mark(self):
        """Index into the event log; `console_problems(since=mark)` reports what happened after it."""
        return len(self._cdp.events)

    def console_problems(self, since=0):
        """(fatal, ignored) console errors, failed loads and uncaught exceptions since `since`."""
        fatal, ignored = [], []
        for e in self._cdp.events[since:]:
            m, p = e.get("method"), e.get("params", {})
            text = None
            if m == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                text = "exception: " + (d.get("exception", {}).get("description") or d.get("text", ""))
            elif m == "Runtime.consoleAPICalled" and p.get("type") == "error":
                args = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
                text = "console.error: " + args
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                ent = p["entry"]
                text = f"log: {ent.get('text', '')} {ent.get('url', '')}".strip()
            if text is not None:
                (ignored if is_ignored(text) else fatal).append(text[:600])
        return fatal, ignored

    # -------------------------------------------------------------------------------------- the UI
    def open_ui(self, port, host="127.0.0.1", stable_s=2.0):
        """Navigate to the ComfyUI frontend and wait until the app is up and has registered every node type the
        server offers (or, should some never register, until the count has been stable for `stable_s`).
        A user that never ran the UI gets the first-run template browser; Comfy.TutorialCompleted is set
        first (as that first run would) so that no dialog covers the graph."""
        t0 = time.time()
        url = f"http://{host}:{port}"
        _mark_tutorial_done(url)
        expected = _server_node_count(url)
        self._run(self._cdp.send("Page.navigate", {"url": url + "/"}, self.sid))
        count, last, since = -1, -1, time.time()
        while time.time() - t0 < self.timeout:
            try:
                count = self.evaluate("(window.app && app.vueAppReady && app.graph && app.canvas && window.LiteGraph)"
                                      " ? Object.keys(LiteGraph.registered_node_types || {}).length : -1", 5)
            except (BrowserError, asyncio.TimeoutError):
                count = -1
            if count != last:
                last, since = count, time.time()
            if count >= expected > 0 or (count > 0 and time.time() - since > stable_s):
                break
            time.sleep(0.1)
        else:
            fatal, ignored = self.console_problems()
            raise BrowserError(f"ComfyUI frontend not ready after {self.timeout} s; console: {fatal + ignored}")
        self.evaluate(JS_INSTALL_HOOK)
        self.settle(3)
        self.close_dialogs()  # e.g. the first-run template browser, should it still appear
        self.info.update(ui_ready_s=round(time.time() - t0, 2), url=f"http://{host}:{port}/",
                         frontend_version=self.evaluate("window.__COMFYUI_FRONTEND_VERSION__ || null"),
                         registered_node_types=self.evaluate("Object.keys(LiteGraph.registered_node_types).length"))
        return self.info

    def close_dialogs(self, timeout=3.0):
        """Click every open dialog's close button and wait until none is visible; returns how many closed."""
        n = self.evaluate(JS_CLOSE_DIALOGS)
        end = time.time() + timeout
        while n and self.evaluate(JS_DIALOGS) and time.time() < end:
            time.sleep(0.05)
        return n

    def registered_types(self):
        return set(self.evaluate("Object.keys(LiteGraph.registered_node_types)"))

    def load_workflow(self, workflow, name="workflow.json"):
        """app.loadGraphData(workflow) with the frontend's missing-node/model dialogs enabled, as a user load."""
        self.evaluate("window.__fsHook.missing = null; true")
        self.evaluate(f"app.loadGraphData({json.dumps(workflow)}, true, true, {json.dumps(name)}).then(() => true)",
                      timeout=self.timeout)
        self.settle(3)

    def graph_to_prompt(self):
        """The API prompt the frontend would queue (`app.graphToPrompt().output`)."""
        return self.evaluate("app.graphToPrompt().then(p => p.output)")

    def screenshot(self, path, fit=True, margin=24, compact=False, hide_minimap=True):
        """PNG of the page; fit=True frames all nodes first (the saved view is kept otherwise), hide_minimap
        hides the minimap overlay for this picture only. compact=True quantises to a palette (small files)."""
        js = "true" if fit else "false", "true" if hide_minimap else "false"
        view = self.evaluate(f"{JS_FIT}({margin}, {js[0]}, {js[1]})")
        self.settle(2)
        shot = self._run(self._cdp.send("Page.captureScreenshot", {"format": "png"}, self.sid))
        data = base64.b64decode(shot["data"])
        if compact:
            data = _compact_png(data)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        return {"path": path, "bytes": len(data), "view": view}

    def view(self):
        """The visible canvas area, the view's scale and every node's and group's screen rectangle (JS_VIEW)."""
        return self.evaluate(JS_VIEW)

    def summaries(self):
        """{node id: text} that the FlowSearch extension (web/flowsearch.js) shows on the nodes."""
        return {int(k): v for k, v in self.evaluate(JS_SUMMARIES).items()}

    def queue_from_ui(self, until, timeout=600, poll=0.25):
        """Press Queue (app.queuePrompt, as the Run button does) and wait until the JS expression `until` is
        truthy; raises BrowserError with the open dialogs on a timeout (e.g. an execution error dialog)."""
        since = self.mark()
        self.evaluate(JS_WATCH_RUN)
        self.evaluate("app.queuePrompt(0, 1).then(() => true)", timeout=60)
        end = time.time() + timeout
        while time.time() < end:
            state = self.evaluate("window.__fsRun")
            if state["error"]:
                raise BrowserError(f"the run failed: {state['error']}")
            if state["done"] and self.evaluate(f"!!({until})"):
                self.settle(3)
                return self.console_problems(since)
            time.sleep(poll)
        raise BrowserError(f"run did not finish in {timeout} s; dialogs: {self.evaluate(JS_DIALOGS)}")

    def check_workflow(self, workflow, name="workflow.json", screenshot=None, compact=False, view_screenshot=None):
        """Load a UI workflow and report everything a test needs (see module docstring). `view_screenshot`:
        also a picture of the saved view as the user first sees it (report["view"]: its geometry)."""
        self.close_dialogs()
        since = self.mark()
        t0 = time.time()
        self.load_workflow(workflow, name)
        report = {"name": name, "load_s": round(time.time() - t0, 2)}
        registered = self.registered_types()
        wf_types = sorted({n["type"] for n in workflow.get("nodes", [])})
        report["workflow_types"] = wf_types
        report["missing_node_types"] = sorted(t for t in wf_types if t not in registered and t not in FRONTEND_ONLY)
        report["frontend_missing"] = self.evaluate("window.__fsHook.missing")
        dialogs = self.evaluate(JS_DIALOGS)
        report["dialogs"] = [d for d in dialogs if not d.startswith(MISSING_MODELS_DIALOG)]
        report["missing_models_dialog"] = [d for d in dialogs if d.startswith(MISSING_MODELS_DIALOG)]
        nodes = self.evaluate(JS_NODES)
        report["nodes"] = nodes
        report["node_errors"] = [f"{n['id']} ({n['type']})" for n in nodes if n["has_errors"]]
        report["node_count"] = {"workflow": len(workflow.get("nodes", [])), "rendered": len(nodes)}
        report["prompt"] = self.graph_to_prompt()
        report["view"] = self.view()
        if view_screenshot:
            self.close_dialogs()       # e.g. the missing-models dialog (already in the report)
            report["view_screenshot"] = self.screenshot(view_screenshot, fit=False, hide_minimap=False)
        if screenshot:
            report["screenshot"] = self.screenshot(screenshot, compact=compact)
        fatal, ignored = self.console_problems(since)
        report["console_errors"], report["console_ignored"] = fatal, ignored
        self.close_dialogs()
        return report


def _compact_png(data, colors=256):
    try:
        from PIL import Image
    except ImportError:
        return data
    img = Image.open(io.BytesIO(data)).convert("RGB").quantize(colors, method=Image.Quantize.MEDIANCUT)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue() if buf.tell() < len(data) else data


# ------------------------------------------------------------------------------------------ comparison
def _norm(v):
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, (int, float)):
        return round(float(v), 9)
    if isinstance(v, (list, tuple)):
        return [_norm(x) for x in v]
    if isinstance(v, dict):
        return {k: _norm(x) for k, x in v.items()}
    return v


def compare_prompts(frontend, ours, object_info=None):
    """Differences between the frontend's graphToPrompt output and host.ui_to_api's, node by node: node set,
    class_type, input names, widget values and links (numbers compared as floats). [] means identical.
    With `object_info`, inputs outside a node's schema are skipped: frontend-only display widgets (e.g.
    PreviewAny's 'preview') that the server ignores."""
    diffs = []
    fe, us = {str(k): v for k, v in frontend.items()}, {str(k): v for k, v in ours.items()}
    for nid in sorted(set(fe) - set(us), key=_nid_key):
        diffs.append(f"node {nid} ({fe[nid].get('class_type')}): only in the frontend's prompt")
    for nid in sorted(set(us) - set(fe), key=_nid_key):
        diffs.append(f"node {nid} ({us[nid].get('class_type')}): only in ui_to_api's prompt")
    for nid in sorted(set(fe) & set(us), key=_nid_key):
        a, b = fe[nid], us[nid]
        if a.get("class_type") != b.get("class_type"):
            diffs.append(f"node {nid}: class_type frontend {a.get('class_type')!r} != ours {b.get('class_type')!r}")
            continue
        ai, bi = a.get("inputs", {}), b.get("inputs", {})
        keys = set(ai) | set(bi)
        if object_info and a["class_type"] in object_info:
            spec = object_info[a["class_type"]].get("input", {})
            keys &= {n for group in ("required", "optional") for n in spec.get(group, {})}
        for k in sorted(keys):
            if k not in bi:
                diffs.append(f"node {nid} ({a['class_type']}).{k}: frontend {ai[k]!r}, missing in ours")
            elif k not in ai:
                diffs.append(f"node {nid} ({a['class_type']}).{k}: ours {bi[k]!r}, missing in the frontend's")
            elif _norm(ai[k]) != _norm(bi[k]):
                diffs.append(f"node {nid} ({a['class_type']}).{k}: frontend {ai[k]!r} != ours {bi[k]!r}")
    return diffs


def _nid_key(nid):
    return (0, int(nid), "") if str(nid).isdigit() else (1, 0, str(nid))


def problems(report, ours=None):
    """Human-readable failures of one check_workflow report (empty list: the workflow is fine in the UI)."""
    out = []
    if report["missing_node_types"]:
        out.append(f"node types not registered in the frontend: {report['missing_node_types']}")
    if report.get("frontend_missing"):
        out.append(f"frontend reported missing node types: {report['frontend_missing']}")
    if report["dialogs"]:
        out.append(f"dialogs opened on load: {report['dialogs']}")
    if report["node_errors"]:
        out.append(f"nodes with has_errors: {report['node_errors']}")
    if report["node_count"]["workflow"] != report["node_count"]["rendered"]:
        nc = report["node_count"]
        out.append(f"node count: workflow {nc['workflow']}, rendered {nc['rendered']}")
    if report["console_errors"]:
        out.append(f"console errors: {report['console_errors']}")
    if ours is not None:
        out += compare_prompts(report["prompt"] or {}, ours)
    return out


# ------------------------------------------------------------------------------------------------- CLI
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workflows", nargs="+")
    ap.add_argument("--port", type=int, help="a running ComfyUI server (default: start one with host.Server)")
    ap.add_argument("--out", default="test-artifacts/ui", help="screenshot folder (<name>.png)")
    ap.add_argument("--shot", help="screenshot path for a single workflow (overrides --out)")
    ap.add_argument("--compact", action="store_true", help="palette-quantised PNG (for docs)")
    ap.add_argument("--size", default="1600x1000")
    ap.add_argument("--json", action="store_true", help="print the full reports")
    a = ap.parse_args(argv)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import host
    width, height = (int(x) for x in a.size.split("x"))
    srv = None if a.port else host.Server(threads=1).start()
    client = host.Client(a.port) if a.port else srv
    failed = 0
    try:
        with Browser(width=width, height=height) as br:
            info = br.open_ui(a.port or srv.port)
            fatal, ignored = br.console_problems()
            print(json.dumps({**info, "page_console_errors": fatal, "page_console_ignored": len(ignored)}, indent=1))
            failed += bool(fatal)
            oi = client.object_info()
            for path in a.workflows:
                name = os.path.basename(path)
                wf = host.load_workflow(path)
                shot = a.shot if (a.shot and len(a.workflows) == 1) else os.path.join(a.out, name[:-5] + ".png")
                rep = br.check_workflow(wf, name, screenshot=shot, compact=a.compact)
                ours = host.ui_to_api(wf, oi)
                bad = problems(rep, ours)
                failed += bool(bad)
                if a.json:
                    print(json.dumps(rep, indent=1))
                print(f"{'FAIL' if bad else 'ok  '} {name}: {rep['node_count']['rendered']} nodes, "
                      f"load {rep['load_s']} s, screenshot {shot} ({rep['screenshot']['bytes'] // 1024} KiB)")
                for b in bad:
                    print("     -", b)
    finally:
        if srv:
            srv.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
