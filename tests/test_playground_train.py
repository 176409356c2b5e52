"""Training the stock ComfyUI Flux class on the playground: block parity, the training smoke, the shipped files."""
import hashlib
import json
import os

import pytest
import torch

from playground.comfy_boot import boot

boot()
from playground import codec  # noqa: E402
from playground import model as pg_model  # noqa: E402
from playground import train, trainable  # noqa: E402

WEIGHTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "playground", "weights")
SMALL = {"hidden_size": 32, "num_heads": 1, "depth": 1, "depth_single_blocks": 1}


def _random_flux(config=None, seed=0):
    flux = pg_model.build({**pg_model.CONFIG, **(config or {})})
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in flux.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return flux


def _inputs(b=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, 16, 16, 16, generator=g), torch.rand(b, generator=g),
            torch.randn(b, codec.N_TOKENS, codec.TOKEN_DIM, generator=g), torch.randn(b, codec.POOLED_DIM, generator=g))


def test_out_of_place_blocks_equal_the_stock_forward():
    flux = _random_flux()
    x, t, c, y = _inputs()
    with torch.no_grad():
        stock = flux(x, t, c, y=y)
        ours = flux(x, t, c, y=y, transformer_options=trainable.out_of_place_options(flux))
    assert stock.abs().mean() > 0.1
    torch.testing.assert_close(ours, stock, rtol=1e-5, atol=1e-5)


def test_only_the_out_of_place_route_can_be_trained():
    """The pitfall the twins exist for: the stock blocks' in-place residual adds break backward."""
    flux = _random_flux(SMALL)
    x, t, c, y = _inputs(2)
    with pytest.raises(RuntimeError, match="inplace|in-place|modified"):
        flux(x, t, c, y=y).square().mean().backward()
    flux.zero_grad()
    flux(x, t, c, y=y, transformer_options=trainable.out_of_place_options(flux)).square().mean().backward()
    grads = [p.grad for p in flux.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


def test_init_sets_rmsnorm_scales_and_zero_outputs():
    flux = trainable.init_weights(pg_model.build({**pg_model.CONFIG, **SMALL}), seed=0)
    scales = [p for n, p in flux.named_parameters() if n.endswith(".scale")]
    assert scales and all(torch.equal(p, torch.ones_like(p)) for p in scales)
    x, t, c, y = _inputs(2)
    with torch.no_grad():
        assert torch.count_nonzero(flux(x, t, c, y=y)) == 0          # adaLN-zero: the model starts at v = 0
    again = trainable.init_weights(pg_model.build({**pg_model.CONFIG, **SMALL}), seed=0)
    assert all(torch.equal(a, b) for a, b in zip(flux.state_dict().values(), again.state_dict().values()))


def test_training_smoke_lowers_the_loss_reproducibly(tmp_path):
    args = ["--steps", "20", "--batch", "16", "--warmup", "2", "--lr", "1e-2", "--eval-every", "0",
            "--eval-samples", "4", "--threads", "1", "--config", json.dumps(SMALL)]
    runs = []
    for name in ("a", "b"):
        manifest = train.main(args + ["--out", str(tmp_path / name)])
        losses = [json.loads(line)["loss"] for line in open(tmp_path / name / "train_log.jsonl") if '"loss"' in line]
        runs.append(losses)
        assert manifest["steps"] == 20 and (tmp_path / name / "loss_curve.png").stat().st_size > 1000
    assert runs[0] == runs[1], "same seeds must give the same loss curve"
    first, last = sum(runs[0][:3]) / 3, sum(runs[0][-3:]) / 3
    assert last < 0.8 * first, (first, last)


def test_shipped_manifest_matches_the_files():
    manifest = json.load(open(os.path.join(WEIGHTS, "manifest.json")))
    assert manifest["command"].startswith("python -m playground.train")
    assert manifest["steps"] > 0 and manifest["final_loss_mean_last_100"] < manifest["first_loss"]
    assert "playground_flux.safetensors" in manifest["files"]
    for name, info in manifest["files"].items():
        path = os.path.join(WEIGHTS, name)
        assert os.path.getsize(path) == info["bytes"] <= 5 * 2 ** 20, name
        assert hashlib.sha256(open(path, "rb").read()).hexdigest() == info["sha256"], name


def test_shipped_weights_load_strictly_into_the_stock_class():
    from safetensors import safe_open
    from comfy.ldm.flux.model import Flux
    path = os.path.join(WEIGHTS, "playground_flux.safetensors")
    with safe_open(path, "pt") as f:
        cfg = json.loads(f.metadata()["flowsearch_playground_config"])
        sd = {k: f.get_tensor(k) for k in f.keys()}
        assert all(v.dtype == torch.float16 for v in sd.values())
    flux = Flux(**cfg, dtype=torch.float32, operations=torch.nn)
    flux.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)
    assert type(flux) is Flux and cfg == pg_model.CONFIG
