"""Parity of the differentiable torch preprocessing with the transformers image processors (real geometries).

Tolerances, in normalised pixel units (the processors' outputs are (x - mean) / std, so 1/255 of an 8-bit level is
about 0.015): the processors resample 8-bit images, so the twins differ by about one 8-bit level.
  * smooth and non-square images: max |diff| <= 0.02, mean <= 0.007;
  * 512 px uniform noise (worst case; resampling-kernel differences on every pixel): mean <= 0.007, max <= 0.35;
  * OWLv2 (float pipeline in the processor too): max <= 1e-3.
The same (smooth) images fed to the processors as float tensors (the torchvision backend, ``do_rescale=False``)
match to 1e-3 (measured: 0.0 for CLIP, BLIP, Grounding DINO, SAM; 2.3e-4 for Qwen2-VL).
"""
import pytest
import torch
import torch.nn.functional as F

from rewards import preprocess as P

tf = pytest.importorskip("transformers")
pytest.importorskip("PIL")


def _images():
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    raw = {"noise": torch.rand(1, 3, 512, 512, generator=g),
           "smooth": F.interpolate(torch.rand(1, 3, 16, 16, generator=g), size=(512, 512), mode="bicubic",
                                   align_corners=False).clamp(0, 1),
           "nonsquare": F.interpolate(torch.rand(1, 3, 12, 16, generator=g), size=(300, 420), mode="bilinear",
                                      align_corners=False).clamp(0, 1)}
    out = {}
    for k, v in raw.items():
        u8 = (v * 255).round().to(torch.uint8)
        out[k] = (u8.float() / 255, Image.fromarray(u8[0].permute(1, 2, 0).numpy()))
    return out


IMAGES = _images()


def _check(name, twin, proc, exact=False):
    for kind, (x, pil) in IMAGES.items():
        a, b = twin(x), proc(pil)
        assert a.shape == b.shape, (name, kind, a.shape, b.shape)
        d = (a - b).abs()
        if exact:
            assert d.max() <= 1e-3, (name, kind, float(d.max()))
        elif kind == "noise":
            assert d.mean() <= 0.007 and d.max() <= 0.35, (name, kind, float(d.mean()), float(d.max()))
        else:
            assert d.mean() <= 0.007 and d.max() <= 0.02, (name, kind, float(d.mean()), float(d.max()))


def test_clip_224_and_336():
    for size in (224, 336):
        ip = tf.CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
        _check(f"clip{size}", lambda x: P.clip_pixels(x, size), lambda p: ip(p, return_tensors="pt").pixel_values)


def test_blip_fixed_resize():
    ip = tf.BlipImageProcessor(size={"height": 384, "width": 384})
    _check("blip", lambda x: P.fixed_pixels(x, 384, 384, ip.image_mean, ip.image_std),
           lambda p: ip(p, return_tensors="pt").pixel_values)


def test_owlv2_pad_and_resize():
    """transformers 5.x (torchvision backend) pads with 0.0 and resizes like the twin: exact. transformers 4.x pads
    with 0.5 (the twin's default, as the original OWLv2) and blurs/zooms with scipy: close except a few noise
    pixels."""
    ip = tf.Owlv2ImageProcessor()
    v5 = int(tf.__version__.split(".")[0]) >= 5 and not type(ip).__name__.endswith("Pil")
    pad = 0.0 if v5 else 0.5
    twin = lambda x: P.owlv2_pixels(x, 960, pad_value=pad)  # noqa: E731
    if v5:
        _check("owlv2", twin, lambda p: ip(p, return_tensors="pt").pixel_values, exact=True)
        return
    for kind, (x, pil) in IMAGES.items():
        d = (twin(x) - ip(pil, return_tensors="pt").pixel_values).abs()
        assert d.mean() <= 0.01 and d.max() <= (1.5 if kind == "noise" else 0.05), (kind, float(d.max()))


def test_grounding_dino_shortest_longest():
    ip = tf.GroundingDinoImageProcessor()
    _check("gdino", lambda x: P.dino_pixels(x)[0], lambda p: ip(p, return_tensors="pt").pixel_values)
    assert P.shortest_edge_size(300, 1200, 800, 1333) == (333, 1333)


def test_sam_resize_pad():
    ip = tf.SamImageProcessor()
    _check("sam", lambda x: P.sam_pixels(x)[0], lambda p: ip(p, return_tensors="pt").pixel_values)
    _, (h, w) = P.sam_pixels(IMAGES["nonsquare"][0])
    assert (h, w) == tuple(ip(IMAGES["nonsquare"][1], return_tensors="pt").reshaped_input_sizes[0].tolist())


def test_qwen2_vl_patchify_and_grid():
    ip = tf.Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=28 * 28 * 256)
    for kind, (x, pil) in IMAGES.items():
        pv, thw = P.qwen_vl_pixels(x, min_pixels=56 * 56, max_pixels=28 * 28 * 256)
        ref = ip(pil, return_tensors="pt")
        assert thw.tolist() == ref.image_grid_thw.tolist()
    _check("qwen", lambda x: P.qwen_vl_pixels(x, min_pixels=56 * 56, max_pixels=28 * 28 * 256)[0],
           lambda p: ip(p, return_tensors="pt").pixel_values)


def test_pad_to_square_centres_with_fill():
    x = torch.zeros(1, 3, 2, 4)
    out = P.pad_to_square(x, (0.5, 0.25, 1.0))
    assert out.shape == (1, 3, 4, 4)
    assert out[0, :, 0, 0].tolist() == [0.5, 0.25, 1.0] and out[0, :, 1:3].abs().sum() == 0
    xg = torch.rand(1, 3, 3, 5, requires_grad=True)
    P.pad_to_square(xg, (0.1, 0.2, 0.3)).sum().backward()
    assert torch.equal(xg.grad, torch.ones_like(xg))


@pytest.mark.parametrize("name", ["clip", "blip", "gdino", "sam", "qwen"])
def test_float_tensor_path_of_torchvision_processors(name):
    """With torchvision, transformers 5.x processors take float tensors (do_rescale=False); the twins match those
    closely (no 8-bit rounding involved), which pins the resize/crop geometry and normalisation."""
    pytest.importorskip("torchvision")
    if int(tf.__version__.split(".")[0]) < 5:
        pytest.skip("float-tensor processor path is transformers 5.x behaviour")
    x = IMAGES["nonsquare"][0]
    if name == "clip":
        ip, twin = tf.CLIPImageProcessor(), lambda t: P.clip_pixels(t, 224)
    elif name == "blip":
        ip = tf.BlipImageProcessor(size={"height": 384, "width": 384})
        twin = lambda t: P.fixed_pixels(t, 384, 384, ip.image_mean, ip.image_std)  # noqa: E731
    elif name == "gdino":
        ip, twin = tf.GroundingDinoImageProcessor(), lambda t: P.dino_pixels(t)[0]
    elif name == "qwen":
        ip = tf.Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=28 * 28 * 256)
        twin = lambda t: P.qwen_vl_pixels(t, min_pixels=56 * 56, max_pixels=28 * 28 * 256)[0]  # noqa: E731
    else:
        ip, twin = tf.SamImageProcessor(), lambda t: P.sam_pixels(t)[0]
    if type(ip).__name__.endswith("Pil"):
        pytest.skip("PIL backend")
    ref = ip(x[0], do_rescale=False, return_tensors="pt").pixel_values
    a = twin(x)
    assert a.shape == ref.shape
    assert (a - ref).abs().max() <= 1e-3
