"""Draw the Comfy Registry icon docs/icon.png (400×400): a magnifier with "FS" in its lens over a gradient.

    .build/venv/bin/python scripts/make_icon.py
Drawn at 4× and downsampled (anti-aliasing); Pillow's bundled font, so any machine draws the same picture."""
import os

from PIL import Image, ImageDraw, ImageFont

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "docs", "icon.png")
SIZE, SS = 400, 4
TOP, BOTTOM = (32, 24, 84), (14, 116, 144)  # indigo -> teal


def gradient(n):
    """Diagonal gradient from TOP (upper left) to BOTTOM (lower right)."""
    ramp = Image.linear_gradient("L").resize((n, n))
    diag = Image.blend(ramp, ramp.rotate(90), 0.5)
    top, bottom = Image.new("RGB", (n, n), TOP), Image.new("RGB", (n, n), BOTTOM)
    return Image.composite(top, bottom, diag.point(lambda v: 255 - v))


def rounded(img, radius):
    mask = Image.new("L", img.size, 0)
    ImageDraw.Draw(mask).rounded_rectangle([0, 0, img.size[0] - 1, img.size[1] - 1], radius, fill=255)
    out = Image.new("RGBA", img.size, (0, 0, 0, 0))
    out.paste(img, (0, 0), mask)
    return out


def magnifier(draw, n):
    cx, cy, r, ring = 0.43 * n, 0.43 * n, 0.27 * n, 0.055 * n
    hx, hy = cx + 0.68 * r, cy + 0.68 * r  # the handle starts under the ring
    draw.line([hx, hy, 0.84 * n, 0.84 * n], fill=(250, 204, 21), width=int(0.09 * n))
    draw.ellipse([0.84 * n - 0.045 * n, 0.84 * n - 0.045 * n, 0.84 * n + 0.045 * n, 0.84 * n + 0.045 * n],
                 fill=(250, 204, 21))
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(255, 255, 255, 40), outline=(255, 255, 255),
                 width=int(ring))
    font = ImageFont.load_default(size=int(0.25 * n))
    draw.text((cx, cy), "FS", font=font, anchor="mm", fill=(255, 255, 255), stroke_width=int(0.008 * n),
              stroke_fill=(255, 255, 255))


def icon():
    n = SIZE * SS
    img = rounded(gradient(n), int(0.18 * n))
    layer = Image.new("RGBA", (n, n), (0, 0, 0, 0))
    magnifier(ImageDraw.Draw(layer), n)
    img = Image.alpha_composite(img, layer)
    return img.resize((SIZE, SIZE), Image.LANCZOS)


if __name__ == "__main__":
    icon().save(OUT, optimize=True)
    print("wrote", os.path.relpath(OUT, ROOT), os.path.getsize(OUT), "bytes")
