"""The SDE sampler and Interpolant Converter inside ComfyUI: in-process on the tiny FLUX, and through the
real server with the shipped workflow (loader substitution as documented in scripts/host.py)."""
import hashlib
import importlib
import os

import pytest
import torch

import host

WF = host.workflow_path("flux_schnell_vp_sde")


@pytest.fixture(scope="module")
def flux(comfy_inproc):
    import comfy.sample  # noqa: F401
    sn = importlib.import_module("comfyui_flowsearch.nodes.sampling_nodes")
    model = comfy_inproc.tiny_flux()
    g = torch.Generator().manual_seed(0)
    cond = [[torch.randn(1, 8, 4096, generator=g) * 0.1, {"pooled_output": torch.randn(1, 768, generator=g) * 0.1}]]
    return sn, model, cond


def _run(model, sampler, sigmas, cond, noise, seed=0):
    import comfy.sample
    latent = torch.zeros_like(noise)
    return comfy.sample.sample_custom(model, noise, 1.0, sampler, sigmas, cond, cond, latent, seed=seed,
                                      disable_pbar=True)


def _convert(sn, model, interpolant="vp"):
    return sn.InterpolantConverter.execute(model, interpolant, 0.1, 20.0, 2.0).result[0]


def test_tiny_flux_ode_is_interpolant_invariant(flux):
    """Linear-ODE on the raw model and VP-ODE on the converted model, same noise, fine grids → same latents."""
    sn, model, cond = flux
    vp = _convert(sn, model)
    steps = 300
    ode = sn.FlowSearchSDESampler.execute(False, "square", 3.0).result[0]
    sig_vp = sn.FlowSearchScheduler.execute(vp, steps, "uniform").result[0]
    t0 = float(sig_vp[0] / (1 + sig_vp[0]))
    sig_lin = torch.linspace(t0, 0.0, steps + 1)
    noise = torch.randn(2, 16, 8, 8, generator=torch.Generator().manual_seed(1))
    a = _run(model, ode, sig_lin, cond, noise)
    b = _run(vp, ode, sig_vp, cond, noise)
    rel = float((a - b).norm() / a.norm())
    assert rel < 2e-2, rel
    # and the SDE moves away from the ODE
    sde = sn.FlowSearchSDESampler.execute(True, "square", 3.0).result[0]
    c = _run(vp, sde, sn.FlowSearchScheduler.execute(vp, 10, "paper").result[0], cond, noise)
    assert float((c - b).norm() / b.norm()) > 0.05


def test_converter_composes_with_stock_samplers(flux):
    """ComfyUI's own euler on the VP-converted model solves the same probability-flow ODE (same time points)."""
    import comfy.samplers
    sn, model, cond = flux
    vp = _convert(sn, model)
    euler = comfy.samplers.sampler_object("euler")
    noise = torch.randn(1, 16, 8, 8, generator=torch.Generator().manual_seed(2))
    ms_raw, ms_vp = model.get_model_object("model_sampling"), vp.get_model_object("model_sampling")
    sig_raw = comfy.samplers.calculate_sigmas(ms_raw, "simple", 200)
    sig_vp = comfy.samplers.calculate_sigmas(ms_vp, "simple", 200)
    t_vp = sig_vp[:-1] / (1 + sig_vp[:-1])
    below_cap = sig_raw[:-1] < t_vp[0]           # the VP path starts at t = 0.99347 (σ_ve capped there)
    assert float(t_vp[0]) == pytest.approx(0.99347, abs=1e-5) and int(below_cap.sum()) > 190
    torch.testing.assert_close(t_vp[below_cap], sig_raw[:-1][below_cap], rtol=1e-4, atol=1e-5)
    a = _run(model, euler, sig_raw, cond, noise)
    b = _run(vp, euler, sig_vp, cond, noise)
    assert float((a - b).norm() / a.norm()) < 3e-2


def test_sampler_is_seeded_per_image(flux):
    """Same NOISE seed → same result; an image's SDE noise does not depend on the batch it is in."""
    sn, model, cond = flux
    vp = _convert(sn, model)
    sde = sn.FlowSearchSDESampler.execute(True, "square", 3.0).result[0]
    sig = sn.FlowSearchScheduler.execute(vp, 10, "paper").result[0]
    noise = torch.randn(3, 16, 8, 8, generator=torch.Generator().manual_seed(3))
    a = _run(vp, sde, sig, cond, noise, seed=7)
    torch.testing.assert_close(_run(vp, sde, sig, cond, noise, seed=7), a, rtol=0, atol=0)
    torch.testing.assert_close(_run(vp, sde, sig, cond, noise[:1], seed=7), a[:1], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(_run(vp, sde, sig, cond, noise, seed=8), a)


def test_scheduler_grids(flux):
    sn, model, _ = flux
    vp = _convert(sn, model)
    s = sn.FlowSearchScheduler.execute(vp, 10, "paper").result[0]
    ms = vp.get_model_object("model_sampling")
    t = s[:-1] / (1 + s[:-1])
    torch.testing.assert_close(t[[0, 9]].double(), torch.tensor([0.99347, 0.70868], dtype=torch.float64), atol=1e-4, rtol=0)
    assert float(s[-1]) == 0.0 and float(ms.sigma_max) == pytest.approx(float(s[0]), rel=1e-5)
    lin = sn.FlowSearchScheduler.execute(model, 4, "uniform").result[0]
    torch.testing.assert_close(lin, torch.tensor([1.0, 0.75, 0.5, 0.25, 0.0]))


# ------------------------------------------------------------------------------------------ real server
OUR_NODES = {
    "FlowSearchInterpolantConverter": ({"model": "MODEL"}, ["MODEL"]),
    "FlowSearchScheduler": ({"model": "MODEL"}, ["SIGMAS"]),
    "FlowSearchSDESampler": ({}, ["SAMPLER"]),
}


def test_every_pack_node_is_registered(comfy):
    """The pack imported cleanly: every node class it lists is served (a schema error would drop them all)."""
    import ast
    listed = set()
    for mod in ("sampling_nodes", "search_nodes", "reward_nodes"):
        tree = ast.parse(open(os.path.join(host.ROOT, "nodes", f"{mod}.py")).read())
        listed |= {n.value.value for n in ast.walk(tree) if isinstance(n, ast.keyword) and n.arg == "node_id"
                   and isinstance(n.value, ast.Constant)}
    missing = sorted(listed - set(comfy.object_info()))
    assert len(listed) >= 6 and not missing, f"not registered (see the server log): {missing}"


def test_nodes_in_object_info(comfy):
    oi = comfy.object_info()
    for node_id, (links, outputs) in OUR_NODES.items():
        spec = oi[node_id]
        assert spec["output"] == outputs
        assert spec["category"] == "sampling/flowsearch"
        req = spec["input"]["required"]
        for name, typ in links.items():
            assert req[name][0] == typ
        for name, entry in req.items():
            assert entry[1].get("tooltip"), f"{node_id}.{name} has no tooltip"
    assert oi["FlowSearchInterpolantConverter"]["input"]["required"]["interpolant"][1]["default"] == "vp"


def _shipped(comfy, seed=None, size=None):
    api = host.substitute_loaders(host.ui_to_api(host.load_workflow(WF), comfy.object_info()))
    for node in api.values():
        if node["class_type"] == "RandomNoise" and seed is not None:
            node["inputs"]["noise_seed"] = seed
        if node["class_type"] == "EmptySD3LatentImage" and size:
            node["inputs"].update(width=size, height=size)
    return api


def _image_digest(entry):
    (name, sub, kind), = host.output_images(entry)
    with open(os.path.join(host.BASE_DIR, kind, sub, name), "rb") as f:
        from PIL import Image
        return hashlib.sha256(Image.open(f).tobytes()).hexdigest()


def test_shipped_workflow_runs_and_is_reproducible(comfy):
    entry = comfy.run(_shipped(comfy, seed=123, size=256), timeout=300)
    assert len(host.output_images(entry)) == 1
    again = comfy.run(_shipped(comfy, seed=123, size=256), timeout=300)
    other = comfy.run(_shipped(comfy, seed=124, size=256), timeout=300)
    assert _image_digest(entry) == _image_digest(again)
    assert _image_digest(entry) != _image_digest(other)


def test_shipped_workflow_at_saved_size(comfy):
    entry = comfy.run(_shipped(comfy), timeout=600)
    (name, sub, kind), = host.output_images(entry)
    from PIL import Image
    assert Image.open(os.path.join(host.BASE_DIR, kind, sub, name)).size == (1024, 1024)


def test_non_flow_model_gets_node_error_and_server_survives(comfy):
    api = _shipped(comfy, size=64)
    unet = next(k for k, v in api.items() if v["class_type"] == "FlowSearchTestTinyFluxLoader")
    conv = next(k for k, v in api.items() if v["class_type"] == "FlowSearchInterpolantConverter")
    api["900"] = {"class_type": "ModelSamplingDiscrete", "inputs": {"model": [unet, 0], "sampling": "eps", "zsnr": False}}
    api[conv]["inputs"]["model"] = ["900", 0]
    with pytest.raises(host.ComfyError, match="needs a flow-matching model") as e:
        comfy.run(api, timeout=120)
    assert "FlowSearchInterpolantConverter" in str(e.value)
    assert len(host.output_images(comfy.run(_shipped(comfy, size=64), timeout=120))) == 1


def test_real_text_encoder_route(comfy):
    """The stock CLIPLoader + CLIPTextEncode (random full-size CLIP-L) conditions a FLUX (768-wide text tokens)
    sampled by our converter, scheduler and SDE sampler; different prompts give different images."""
    def prompt(text):
        return {
            "1": {"class_type": "FlowSearchTestTinyFluxLoader", "inputs": {"unet_name": "flux_tiny_h64_ctx768.safetensors"}},
            "2": {"class_type": "CLIPLoader", "inputs": {"clip_name": "clip_l_random.safetensors", "type": "stable_diffusion"}},
            "3": {"class_type": "CLIPTextEncode", "inputs": {"text": text, "clip": ["2", 0]}},
            "4": {"class_type": "FluxGuidance", "inputs": {"conditioning": ["3", 0], "guidance": 3.5}},
            "5": {"class_type": "FlowSearchInterpolantConverter", "inputs": {"model": ["1", 0], "interpolant": "vp",
                                                                             "beta_min": 0.1, "beta_max": 20.0, "polynomial_n": 2.0}},
            "6": {"class_type": "BasicGuider", "inputs": {"model": ["5", 0], "conditioning": ["4", 0]}},
            "7": {"class_type": "FlowSearchScheduler", "inputs": {"model": ["5", 0], "steps": 6, "grid": "paper"}},
            "8": {"class_type": "FlowSearchSDESampler", "inputs": {"sde": True, "diffusion": "square", "diffusion_norm": 3.0}},
            "9": {"class_type": "RandomNoise", "inputs": {"noise_seed": 3}},
            "10": {"class_type": "EmptySD3LatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
            "11": {"class_type": "SamplerCustomAdvanced", "inputs": {"noise": ["9", 0], "guider": ["6", 0], "sampler": ["8", 0],
                                                                     "sigmas": ["7", 0], "latent_image": ["10", 0]}},
            "12": {"class_type": "VAELoader", "inputs": {"vae_name": "taef1_random.safetensors"}},
            "13": {"class_type": "VAEDecode", "inputs": {"samples": ["11", 0], "vae": ["12", 0]}},
            "14": {"class_type": "SaveImage", "inputs": {"images": ["13", 0], "filename_prefix": "clip_route"}},
        }
    a = comfy.run(prompt("a red fox in the snow"), timeout=300)
    b = comfy.run(prompt("a blue whale in the sea"), timeout=300)
    assert _image_digest(a) != _image_digest(b)


def test_stock_loader_flux_3072(comfy_inproc, tmp_path):
    """The smallest FLUX that ComfyUI's own detection accepts (hidden 3072, 1 double block; 404 M params) loads
    through comfy.sd.load_diffusion_model — what UNETLoader calls — and samples with the converter + SDE sampler."""
    import comfy.sample
    import comfy.sd
    import make_tiny_models
    path = str(tmp_path / "flux_min_3072.safetensors")
    make_tiny_models.save(make_tiny_models.flux(3072, 1, 0, 24), path, torch.bfloat16)
    model = comfy.sd.load_diffusion_model(path)
    assert type(model.model).__name__ == "Flux" and model.model.diffusion_model.hidden_size == 3072
    sn = importlib.import_module("comfyui_flowsearch.nodes.sampling_nodes")
    vp = sn.InterpolantConverter.execute(model, "vp", 0.1, 20.0, 2.0).result[0]
    sigmas = sn.FlowSearchScheduler.execute(vp, 2, "paper").result[0]
    sampler = sn.FlowSearchSDESampler.execute(True, "square", 3.0).result[0]
    g = torch.Generator().manual_seed(0)
    cond = [[torch.randn(1, 4, 4096, generator=g) * 0.1, {"pooled_output": torch.randn(1, 768, generator=g) * 0.1,
                                                          "guidance": 3.5}]]
    z = torch.zeros(1, 16, 8, 8)
    out = comfy.sample.sample_custom(vp, torch.randn(1, 16, 8, 8, generator=g), 1.0, sampler, sigmas, cond, cond, z,
                                     seed=0, disable_pbar=True)
    assert out.shape == z.shape and torch.isfinite(out).all()
    import comfy.model_management
    comfy.model_management.unload_all_models()  # 1.6 GB: do not keep it for the rest of the session
