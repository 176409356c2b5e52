"""Fixtures for the real ComfyUI host: a session-scoped server (`comfy`) and in-process ComfyUI (`comfy_inproc`).

The server is `main.py --cpu` on a free loopback port with this repo and tests/comfy_test_nodes linked into
its custom_nodes (scripts/setup.sh). Its log is attached to every failing test that used it."""
import os

import pytest

import host
from inproc import InProcess

_servers = []


@pytest.fixture(scope="session")
def comfy():
    """A running ComfyUI server (host.Server: object_info(), run(), queue(), wait(), interrupt())."""
    srv = host.Server(threads=1, log_path=os.path.join(host.BUILD, "logs", "pytest_server.log"))
    srv.start()
    _servers.append(srv)
    yield srv
    srv.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and "comfy" in getattr(item, "fixturenames", ()) and _servers:
        rep.sections.append(("ComfyUI server log (tail)", _servers[-1].log_tail(120)))


@pytest.fixture(scope="session")
def comfy_inproc():
    return InProcess()


@pytest.fixture
def vae_approx_dir(tmp_path, monkeypatch):
    """A temporary models/vae_approx holding exactly the files a test writes into the returned folder (as
    taef1_decoder.safetensors, what `"reward_decoder": "taesd"` and latent previews load), visible only to it."""
    import folder_paths
    folder = tmp_path / "vae_approx"
    folder.mkdir()
    real_list, real_path = folder_paths.get_filename_list, folder_paths.get_full_path
    monkeypatch.setattr(folder_paths, "get_filename_list", lambda kind: sorted(p.name for p in folder.iterdir())
                        if kind == "vae_approx" else real_list(kind))
    monkeypatch.setattr(folder_paths, "get_full_path", lambda kind, name: str(folder / name)
                        if kind == "vae_approx" else real_path(kind, name))
    return folder
