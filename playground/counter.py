"""Counting objects in playground images: the reward counter and a stricter held-out counter (numpy + scipy).

Reward counter (what the Count Objects Reward optimises): pixels within RGB distance 0.4 of an object colour,
4-connected components of at least 4 px; a component is a square when it fills ≥ 80 % of its bounding box,
else a cross.

Held-out counter (reported, never optimised, so reward hacking is visible): distance < 0.25, 8-connectivity, and a
component counts only if it *is* a well-formed object: its bounding box is 5–7 px on each side, and its mask
matches the square or cross stamp (best of the 3×3 alignments around its box) with intersection-over-union ≥ 0.6.
Smudges, merged blobs and fragments count as nothing."""
import numpy as np
from scipy import ndimage

from . import world

_COLOURS = np.array(list(world.COLOURS.values()), np.float32)
_FOUR = ndimage.generate_binary_structure(2, 1)
_EIGHT = ndimage.generate_binary_structure(2, 2)


def _colour_masks(img, max_dist):
    """[n_colours, H, W] bool: pixels within `max_dist` (RGB Euclidean) of each object colour."""
    d = np.linalg.norm(img[None, :, :, :] - _COLOURS[:, None, None, :], axis=-1)
    return d < max_dist


def _empty_counts():
    return {t: 0 for t in world.TYPES}


def count_reward(img):
    """{(colour, shape): count} of one image [H, W, 3] in [0, 1] by the reward counter."""
    counts = _empty_counts()
    for colour, mask in zip(world.COLOURS, _colour_masks(np.asarray(img, np.float32), 0.4)):
        labels, n = ndimage.label(mask, structure=_FOUR)
        if not n:
            continue
        for sl, lab in zip(ndimage.find_objects(labels), range(1, n + 1)):
            area = int((labels[sl] == lab).sum())
            if area < 4:
                continue
            fill = area / ((sl[0].stop - sl[0].start) * (sl[1].stop - sl[1].start))
            counts[(colour, "square" if fill >= 0.8 else "cross")] += 1
    return counts


def _stamp_iou(comp, shape):
    """Best IoU of a component mask (its bounding box) with a stamp, over 3×3 placements around the box."""
    stamp = world.STAMPS[shape]
    h, w = comp.shape
    canvas = np.zeros((h + 2 * world.STAMP, w + 2 * world.STAMP), bool)
    canvas[world.STAMP:world.STAMP + h, world.STAMP:world.STAMP + w] = comp
    cy, cx = world.STAMP + h // 2 - world.STAMP // 2, world.STAMP + w // 2 - world.STAMP // 2
    best = 0.0
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            placed = np.zeros_like(canvas)
            placed[cy + dy:cy + dy + world.STAMP, cx + dx:cx + dx + world.STAMP] = stamp
            inter, union = (placed & canvas).sum(), (placed | canvas).sum()
            best = max(best, inter / union)
    return best


def count_heldout(img):
    """{(colour, shape): count} of one image by the stricter held-out counter (well-formed objects only)."""
    counts = _empty_counts()
    for colour, mask in zip(world.COLOURS, _colour_masks(np.asarray(img, np.float32), 0.25)):
        labels, n = ndimage.label(mask, structure=_EIGHT)
        for sl, lab in zip(ndimage.find_objects(labels), range(1, n + 1)):
            h, w = sl[0].stop - sl[0].start, sl[1].stop - sl[1].start
            if not (5 <= h <= 7 and 5 <= w <= 7):
                continue
            comp = labels[sl] == lab
            ious = {s: _stamp_iou(comp, s) for s in world.SHAPES}
            shape = max(ious, key=ious.get)
            if ious[shape] >= 0.6:
                counts[(colour, shape)] += 1
    return counts


def rss(counts, groups):
    """The paper's residual sum of squares over the caption's types: Σ (count − target)²."""
    return sum((counts[g.type] - g.count) ** 2 for g in groups)


def exact(counts, groups):
    """True when every caption type has exactly its target count."""
    return all(counts[g.type] == g.count for g in groups)
