"""The playground world: 32×32 images of coloured squares and crosses, captioned with counted object types.

Captions follow one grammar, e.g. "three red squares and two blue crosses" or "three red squares, two blue crosses
and one green square": two or three groups `<count> <colour> <shape>` joined by "," / "and", counts one..six,
different (colour, shape) types, at most 16 objects. Two groups alone proved too easy for search (Best-of-N found
both counts in 98 % of cases at 300 NFE); the third group makes exact counts rare enough for the paper's regime. Objects are 6×6 stamps placed one per 8×8
cell of a 4×4 grid with a one-pixel jitter, so they never touch and a connected-component counter is exact on
generated images (tests/test_playground_world.py)."""
import re
from dataclasses import dataclass

import numpy as np

SIZE = 32                      # image side (pixels)
CELL = 8                       # one object per CELL×CELL cell
STAMP = 6                      # object bounding box; CELL - STAMP - 1 = 1 px of jitter keeps a ≥ 1 px gap
MAX_COUNT = 6
GROUPS = (2, 3)                # groups per caption; P(3) = THREE_GROUP_SHARE in training captions
THREE_GROUP_SHARE = 0.6
COLOURS = {"red": (0.92, 0.16, 0.14), "green": (0.18, 0.78, 0.22), "blue": (0.20, 0.36, 0.96)}
SHAPES = ("square", "cross")
PLURALS = {"square": "squares", "cross": "crosses"}
NUMBERS = ("one", "two", "three", "four", "five", "six")
BACKGROUND = (0.06, 0.22)      # plain background, grey level drawn per image
MAX_CAPTION_CHARS = 200        # longer text is refused before any parsing (hostile-input guard)


def _stamps():
    square = np.ones((STAMP, STAMP), bool)
    cross = np.zeros((STAMP, STAMP), bool)
    cross[2:4, :] = cross[:, 2:4] = True            # a plus with arms two pixels wide
    return {"square": square, "cross": cross}


STAMPS = _stamps()
TYPES = tuple((c, s) for c in COLOURS for s in SHAPES)   # the six object types


@dataclass(frozen=True)
class Group:
    """`count` objects of one type: colour in COLOURS, shape in SHAPES."""
    count: int
    colour: str
    shape: str

    @property
    def type(self):
        return self.colour, self.shape

    def words(self):
        noun = self.shape if self.count == 1 else PLURALS[self.shape]
        number = NUMBERS[self.count - 1] if 1 <= self.count <= len(NUMBERS) else str(self.count)
        return f"{number} {self.colour} {noun}"


def caption(groups):
    """The caption of a list of groups: "three red squares and two blue crosses", "a, b and c"."""
    words = [g.words() for g in groups]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


_WORD_NUMBERS = {w: i + 1 for i, w in enumerate(NUMBERS)}
_NOUNS = {**{s: s for s in SHAPES}, **{p: s for s, p in PLURALS.items()}}
_GROUP = re.compile(r"^\s*(\S+)\s+(\w+)\s+(\w+)\s*$")


_OTHER_NUMBERS = {"zero", "no", "seven", "eight", "nine", "ten", "eleven", "twelve", "dozen", "many", "several"}


def _looks_numeric(word):
    try:
        float(word)
        return True
    except ValueError:
        return word in _OTHER_NUMBERS


def parse_caption(text, max_groups=max(GROUPS)):
    """Groups of a caption in the grammar (case-insensitive, digits allowed): → [Group, ...].

    Raises ValueError that quotes the grammar when the text does not follow it."""
    if not isinstance(text, str):
        raise ValueError(f"a caption must be text, got {type(text).__name__}")
    if len(text) > MAX_CAPTION_CHARS:
        raise ValueError(f"the caption is {len(text)} characters long; the playground grammar needs at most "
                         f"{MAX_CAPTION_CHARS}, e.g. 'three red squares and two blue crosses'")
    parts = [p for p in re.split(r"\s*(?:,|\band\b)\s*", text.strip().rstrip(".").lower()) if p]
    if not 1 <= len(parts) <= max_groups:
        raise ValueError(f"could not read {text!r}: write 1 to {max_groups} groups '<count> <colour> <shape>' joined "
                         f"by 'and', e.g. 'three red squares and two blue crosses'")
    groups = []
    for part in parts:
        m = _GROUP.match(part)
        if not m:
            raise ValueError(f"could not read {part!r} in {text!r}: each group is '<count> <colour> <shape>', "
                             f"e.g. 'two blue crosses'")
        num, colour, noun = m.groups()
        count = int(num) if num.isascii() and num.isdigit() else _WORD_NUMBERS.get(num)  # not '²' (int() fails)
        if count is None or not 1 <= count <= MAX_COUNT:
            if not _looks_numeric(num):
                raise ValueError(f"could not read {part!r} in {text!r}: each group is '<count> <colour> <shape>' "
                                 f"with a count one..{NUMBERS[-1]}, e.g. 'two blue crosses'")
            raise ValueError(f"the count {num!r} in {text!r} must be one..{NUMBERS[-1]} (1..{MAX_COUNT})")
        if colour not in COLOURS:
            raise ValueError(f"unknown colour {colour!r} in {text!r}; the playground has {', '.join(COLOURS)}")
        if noun not in _NOUNS:
            raise ValueError(f"unknown shape {noun!r} in {text!r}; the playground has "
                             f"{', '.join(PLURALS.values())}")
        groups.append(Group(count, colour, _NOUNS[noun]))
    if len({g.type for g in groups}) != len(groups):
        raise ValueError(f"{text!r} names the same kind of object twice; name two different kinds")
    return groups


def sample_groups(rng, n_groups=None):
    """n_groups (default: 2 or 3, P(3) = THREE_GROUP_SHARE) different object types with counts 1..MAX_COUNT,
    uniform among the count combinations that fit the grid."""
    if n_groups is None:
        n_groups = 3 if rng.random() < THREE_GROUP_SHARE else 2
    types = rng.choice(len(TYPES), size=n_groups, replace=False)
    while True:
        counts = rng.integers(1, MAX_COUNT + 1, size=n_groups)
        if counts.sum() <= (SIZE // CELL) ** 2:
            return [Group(int(c), *TYPES[t]) for c, t in zip(counts, types)]


def render(groups, rng):
    """An image [SIZE, SIZE, 3] float32 in [0, 1] with exactly the groups' objects, and their boxes
    [(colour, shape, y, x)]."""
    n = sum(g.count for g in groups)
    cells_per_side = SIZE // CELL
    if n > cells_per_side ** 2:
        raise ValueError(f"{n} objects do not fit the {cells_per_side}×{cells_per_side} grid")
    img = np.empty((SIZE, SIZE, 3), np.float32)
    img[:] = rng.uniform(*BACKGROUND)
    cells = rng.permutation(cells_per_side ** 2)[:n]
    jitter = rng.integers(0, CELL - STAMP, size=(n, 2))
    boxes, i = [], 0
    for g in groups:
        for _ in range(g.count):
            y = (cells[i] // cells_per_side) * CELL + jitter[i, 0]
            x = (cells[i] % cells_per_side) * CELL + jitter[i, 1]
            img[y:y + STAMP, x:x + STAMP][STAMPS[g.shape]] = COLOURS[g.colour]
            boxes.append((g.colour, g.shape, int(y), int(x)))
            i += 1
    return img, boxes


def batch(rng, n):
    """n random (caption groups, image) pairs: → (list of group lists, float32 [n, SIZE, SIZE, 3])."""
    groups = [sample_groups(rng) for _ in range(n)]
    return groups, np.stack([render(g, rng)[0] for g in groups])
