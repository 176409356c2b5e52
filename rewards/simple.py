"""Weight-free rewards: JPEG (in)compressibility (DDPO) and simple image-statistic targets artists can combine."""
from __future__ import annotations

import io
import math
import re

import torch

from .base import Reward, RewardError, quoted

LUMA = (0.2126, 0.7152, 0.0722)  # Rec. 709


class JpegReward(Reward):
    """DDPO's JPEG compressibility: ``-size`` of the image saved as JPEG (quality 95), in kB; ``incompressible=True``
    gives ``+size``. Not differentiable (it runs the real encoder)."""

    differentiable = False
    needs_prompt = False

    def __init__(self, incompressible: bool = False, quality: int = 95, batch_size: int = 64):
        super().__init__(batch_size)
        self.incompressible = bool(incompressible)
        self.quality = int(quality)
        self.name = "jpeg_incompressibility" if incompressible else "jpeg_compressibility"
        self.score_range = (0.0, 150.0) if incompressible else (-150.0, 0.0)

    def _score(self, x, prompts, **kw):
        from PIL import Image

        arr = (x.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        sizes = []
        for a in arr:
            buf = io.BytesIO()
            Image.fromarray(a).save(buf, format="JPEG", quality=self.quality)
            sizes.append(buf.tell() / 1000.0)
        s = torch.tensor(sizes, dtype=torch.float32, device=x.device)
        return s if self.incompressible else -s


def luminance(x: torch.Tensor) -> torch.Tensor:
    w = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1)


def saturation(x: torch.Tensor) -> torch.Tensor:
    """HSV saturation per pixel, (max - min) / max."""
    mx = x.amax(1)
    mn = x.amin(1)
    return (mx - mn) / (mx + 1e-6)


class ImageStatReward(Reward):
    """A differentiable image statistic in [0, 1]: ``brightness`` (mean Rec.709 luma), ``saturation`` (mean HSV
    saturation) or ``contrast`` (2 x std of luma).

    mode ``maximize`` returns the statistic, ``minimize`` its negative, ``target`` returns ``-|stat - target|``."""

    differentiable = True
    needs_prompt = False

    def __init__(self, stat: str = "brightness", mode: str = "target", target: float = 0.5, batch_size: int = 64):
        super().__init__(batch_size)
        if stat not in ("brightness", "saturation", "contrast"):
            raise RewardError(f"unknown image statistic '{stat}' (brightness, saturation, contrast)")
        if mode not in ("maximize", "minimize", "target"):
            raise RewardError(f"unknown mode '{mode}' (maximize, minimize, target)")
        self.stat, self.mode, self.target = stat, mode, float(target)
        self.name = f"{stat}_{mode}" + (f"_{self.target:g}" if mode == "target" else "")
        self.score_range = {"maximize": (0.0, 1.0), "minimize": (-1.0, 0.0), "target": (-1.0, 0.0)}[mode]

    def statistic(self, x: torch.Tensor) -> torch.Tensor:
        if self.stat == "brightness":
            return luminance(x).mean((1, 2))
        if self.stat == "saturation":
            return saturation(x).mean((1, 2))
        return 2.0 * luminance(x).flatten(1).std(1)

    def _score(self, x, prompts, **kw):
        s = self.statistic(x)
        if self.mode == "maximize":
            return s
        if self.mode == "minimize":
            return -s
        return -(s - self.target).abs()


COLOR_FIX = "write it as #rrggbb (six hex digits 0-9, a-f, e.g. #ff8800) or r,g,b (three numbers 0-255, e.g. 255,136,0)"
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


def parse_color(color) -> tuple[float, float, float]:
    """'#rrggbb', 'r,g,b' (0-255, or 0-1 when all are at most 1) or a 3-sequence -> RGB in [0, 1].

    Anything else (bad hex digits, NaN, negative or > 255 components, not three of them) is a RewardError that
    names the input 'color' and the two accepted forms."""
    if isinstance(color, str):
        c = color.strip()
        if c.startswith("#"):
            if not _HEX.match(c):
                raise RewardError(f"input 'color': cannot read {quoted(color)}; {COLOR_FIX}")
            return tuple(int(c[i:i + 2], 16) / 255.0 for i in (1, 3, 5))
        color = c.replace(" ", "").split(",")
    try:
        color = [float(v) for v in color]
    except (TypeError, ValueError):
        raise RewardError(f"input 'color': cannot read {quoted(color)}; {COLOR_FIX}") from None
    if len(color) != 3 or not all(math.isfinite(v) and 0.0 <= v <= 255.0 for v in color):
        raise RewardError(f"input 'color': {quoted(color)} is not three numbers between 0 and 255; {COLOR_FIX}")
    if max(color) > 1.0:
        color = [v / 255.0 for v in color]
    return tuple(color)


class ColorReward(Reward):
    """``-||mean colour - target||`` (RGB in [0, 1], divided by sqrt(3) so the score lies in [-1, 0]); with
    ``per_pixel=True`` the mean per-pixel distance instead (pushes every pixel toward the colour)."""

    differentiable = True
    needs_prompt = False
    score_range = (-1.0, 0.0)

    def __init__(self, color="#ff0000", per_pixel: bool = False, batch_size: int = 64):
        super().__init__(batch_size)
        self.color = parse_color(color)
        self.per_pixel = bool(per_pixel)
        self.name = "color_" + "".join(f"{round(v * 255):02x}" for v in self.color)

    def _score(self, x, prompts, **kw):
        c = torch.tensor(self.color, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        if self.per_pixel:
            d = ((x - c).pow(2).sum(1) + 1e-12).sqrt().mean((1, 2))
        else:
            d = ((x.mean((2, 3)) - c.view(1, 3)).pow(2).sum(1) + 1e-12).sqrt()
        return -d / 3 ** 0.5
