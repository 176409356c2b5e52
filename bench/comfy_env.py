"""Shared set-up of the ComfyUI-level benches: in-process ComfyUI on the tiny FLUX, the FlowSearch node, and
timers around the three costly callables of a search (model forward, VAE decode, reward call).

    env = ComfyEnv(threads=1)                  # tiny FLUX h64 + taef1_random VAE + cond
    with env.timers() as t:                    # t.forward / t.decode / t.reward: seconds and call counts
        rep = env.flowsearch("RBF (paper)", budget=40, px=64, reward=..., max_batch=1)

Not a test; every bench/*.py that drives the node imports it."""
import contextlib
import json
import os
import platform
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _p in (ROOT, os.path.join(ROOT, "scripts"), os.path.join(ROOT, "tests", "fixtures")):
    if _p not in sys.path:
        sys.path.insert(0, _p)
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

RESULTS = os.path.join(ROOT, "bench", "results")
PRESETS = {"rbf": "RBF (paper)", "svdd": "SVDD", "smc": "SMC", "sop": "SoP", "code": "CoDe", "bon": "Best-of-N",
           "noise_search": "Noise search"}


def machine(threads):
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{platform.machine()} {cpu}, {os.cpu_count()} cpu, torch {torch.__version__}, {threads} thread(s)"


def median(xs):
    return statistics.median(xs)


def save(name, res):
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, f"{name}.json")
    with open(path, "w") as f:
        json.dump(res, f, indent=1)
    return path


class Timer:
    def __init__(self):
        self.s, self.calls, self.rows = 0.0, 0, 0

    def wrap(self, fn, rows_of=None):
        def timed(*a, **k):
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.s += time.perf_counter() - t
                self.calls += 1
                if rows_of is not None:
                    self.rows += rows_of(a, k)
        return timed

    def as_dict(self):
        return {"s": self.s, "calls": self.calls, "rows": self.rows}


class Timers:
    def __init__(self):
        self.forward, self.decode, self.reward = Timer(), Timer(), Timer()

    def as_dict(self):
        return {k: getattr(self, k).as_dict() for k in ("forward", "decode", "reward")}


class ComfyEnv:
    def __init__(self, threads=1, model_name="flux_tiny_h64.safetensors", base=None):
        torch.set_num_threads(threads)
        self.threads = threads
        from inproc import InProcess
        import host
        if base:
            host.BASE_DIR = base
        self.ip = InProcess()
        import importlib
        self.sn = self.ip.node_module("search_nodes")
        self.sampling_nodes = self.ip.node_module("sampling_nodes")
        self.glue = self.ip.node_module("search_glue")
        self.rw = importlib.import_module("comfyui_flowsearch.rewards")
        self.model = self.ip.tiny_flux(model_name) if "tiny" in model_name else self._stock(model_name)
        self.vae = self.ip.vae()
        g = torch.Generator().manual_seed(0)
        ctx = self.model.model.diffusion_model.params.context_in_dim if hasattr(
            self.model.model.diffusion_model, "params") else 4096
        self.cond = [[torch.randn(1, 16, ctx, generator=g) * 0.1,
                      {"pooled_output": torch.randn(1, 768, generator=g) * 0.1}]]

    def _stock(self, name):
        import comfy.sd
        import host
        return comfy.sd.load_diffusion_model(os.path.join(host.BASE_DIR, "models", "diffusion_models", name))

    def machine(self):
        return machine(self.threads)

    def reward(self, kind="jpeg"):
        if kind == "jpeg":
            return self.rw.JpegReward()
        if kind == "brightness":
            return self.rw.ImageStatReward("brightness", "maximize")
        raise ValueError(kind)

    def flowsearch(self, preset="RBF (paper)", budget=40, px=64, reward=None, max_batch=0, seed=0, steps=10,
                   options=""):
        preset = PRESETS.get(preset, preset)
        latent = {"samples": torch.zeros(1, 16, px // 8, px // 8)}
        out = self.sn.FlowSearch.execute(self.model, self.cond, latent, self.vae, reward or self.reward(), seed,
                                         preset, steps, "vp", budget, "", max_batch, 0, 0.0,
                                         options if isinstance(options, str) else json.dumps(options))
        return json.loads(out.result[3])

    def search_only(self, method="rbf", budget=40, px=64, reward=None, max_batch=0, seed=0, steps=10, options=None):
        """The search as FlowSearch runs it (KSAMPLER through the guider), without the node's final decodes of
        the best image and every candidate or the report/plot (those are once per node run, not per NFE)."""
        import functools
        import comfy.samplers
        from comfy_extras.nodes_custom_sampler import Guider_Basic
        method = {v: k for k, v in PRESETS.items()}.get(method, method)
        model = self.sampling_nodes.convert_model(self.model, "vp")
        box = {}
        fn = functools.partial(self.glue.sample_search, reward=reward or self.reward(), vae=self.vae, prompt="",
                               method=method, nfe_budget=budget, options=dict(options or {}),
                               max_batch=max_batch or None, finish_steps=0, guidance_scale=0.0, result_box=box)
        guider = Guider_Basic(model)
        guider.set_conds(self.cond)
        lat = torch.zeros(1, 16, px // 8, px // 8)
        sigmas = self.sampling_nodes.grid_sigmas(model, steps, "paper", "bench")
        guider.sample(torch.zeros_like(lat), lat, comfy.samplers.KSAMPLER(fn), sigmas,
                      seed=seed, disable_pbar=True)
        return box["results"][0]

    def euler(self, steps, px=64, seed=0):
        """Plain ComfyUI euler (comfy.sample.sample_custom) with `steps` model calls at batch 1 on the same model."""
        import comfy.sample
        import comfy.samplers
        model = self.sampling_nodes.convert_model(self.model, "vp")
        sigmas = self.sampling_nodes.grid_sigmas(model, steps, "paper", "bench")
        noise = torch.randn(1, 16, px // 8, px // 8, generator=torch.Generator().manual_seed(seed))
        return comfy.sample.sample_custom(model, noise, 1.0, comfy.samplers.sampler_object("euler"), sigmas, self.cond,
                                          self.cond, torch.zeros_like(noise), seed=seed, disable_pbar=True)

    @contextlib.contextmanager
    def timers(self, reward=None):
        """Time every diffusion-model forward, VAE decode and reward call made inside the block."""
        t = Timers()
        dm = self.model.model.diffusion_model
        vae = self.vae
        dm.forward = t.forward.wrap(type(dm).forward.__get__(dm), rows_of=lambda a, k: int(a[0].shape[0]))
        vae.decode = t.decode.wrap(type(vae).decode.__get__(vae), rows_of=lambda a, k: int(a[0].shape[0]))
        patched = []
        if reward is not None:
            cls = type(reward)
            timed_cls = type(f"Timed{cls.__name__}", (cls,), {"__call__": t.reward.wrap(cls.__call__)})
            reward.__class__ = timed_cls
            patched.append((reward, cls))
        try:
            yield t
        finally:
            del dm.forward
            del vae.decode
            for r, cls in patched:
                r.__class__ = cls


def learned_taef1(folder):
    """Write the learned playground decoder as <folder>/taef1_decoder.safetensors (ComfyUI's preview layout) and put
    folder first among ComfyUI's vae_approx paths, where `"reward_decoder": "taesd"` looks for taef1 files."""
    import importlib
    import folder_paths
    os.makedirs(folder, exist_ok=True)
    importlib.import_module("comfyui_flowsearch.playground.comfy_glue").save_taesd_preview_file(
        os.path.join(folder, "taef1_decoder.safetensors"))
    folder_paths.add_model_folder_path("vae_approx", folder, is_default=True)


@contextlib.contextmanager
def before_fixes(glue):
    """The glue as it was before the performance pass (docs/performance.md): contiguous (NCHW) CPU decodes and a
    memory-policy load call before every decode. Same results; used for the before/after columns."""
    dec_probe, co_init = glue.LatentDecoder.probe, glue.CoResident.__init__

    def co(self, *a, **k):
        co_init(self, *a, **k)
        self.can_evict = True
    glue.LatentDecoder.probe, glue.CoResident.__init__ = (lambda self, z: False), co
    try:
        yield
    finally:
        glue.LatentDecoder.probe, glue.CoResident.__init__ = dec_probe, co_init


def model_call_timer(t):
    """Also time the model callable a KSAMPLER gets (comfy.samplers.KSamplerX0Inpaint.__call__): the same callable a
    plain sampler calls, so ComfyUI's own per-call wrapping is not counted as search overhead."""
    import comfy.samplers
    cls = comfy.samplers.KSamplerX0Inpaint
    real = cls.__call__
    t.model_call = Timer()
    cls.__call__ = t.model_call.wrap(real, rows_of=lambda a, k: int(a[1].shape[0]))

    def undo():
        cls.__call__ = real
    return undo
