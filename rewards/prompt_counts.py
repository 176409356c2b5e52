"""Counting targets read from a prompt: "Six airplanes flying over a desert with seven camels" -> airplanes 6, camels 7.

The rule, kept simple on purpose:

* a count is a number word ``one`` .. ``twenty`` or digits ``1`` .. ``99`` (``a``/``an`` are not counts: "a photo
  of ..." would count photos; years and sizes such as "1990" or "1024px" are not counts either);
* its noun phrase is the words after it up to the next comma/full stop, stop word (preposition, conjunction,
  article, pronoun, ``is``/``are``, ...) or number, at most three words;
* inside the phrase, a word ending in ``-ing`` after the first word ends it ("camels walking" -> "camels"), and the
  phrase ends after its first plural word ending in ``s`` ("six red airplanes flying" -> "red airplanes");
* a count with no words after it ("one of the ...") is skipped; the same phrase twice adds up.

Class names are lower case, as the detectors see them.
"""
from __future__ import annotations

import re

from .base import RewardError, quoted

NUMBER_WORDS = {w: i + 1 for i, w in enumerate(
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen "
    "eighteen nineteen twenty".split())}
MAX_DIGITS_COUNT = 99
MAX_PHRASE_WORDS = 3
STOP_WORDS = frozenset("""
    and or but nor with without of in on at over under above below beneath beside besides behind near next by from to
    into onto upon around between among amid across along against through inside outside within beyond toward towards
    the a an this that these those each every some any all both either neither no
    is are was were be been being has have had
    who which that while as for than then there here
    it its their his her our my your them they he she we you
    """.split())
TOKEN = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*|[,.;:!?()]")
EXAMPLE = "'six airplanes and seven camels'"


def _count(token: str) -> int | None:
    if token in NUMBER_WORDS:
        return NUMBER_WORDS[token]
    if token.isdigit() and 1 <= int(token) <= MAX_DIGITS_COUNT:
        return int(token)
    return None


def _is_plural(word: str) -> bool:
    return len(word) > 2 and word.endswith("s") and not word.endswith(("ss", "us", "is"))


def _phrase(tokens: list[str]) -> str:
    """The noun phrase at the start of ``tokens`` (the words after a count), '' if there is none."""
    words = []
    for tok in tokens[:MAX_PHRASE_WORDS]:
        if not tok[0].isalnum() or tok in STOP_WORDS or _count(tok) is not None:
            break
        if words and tok.endswith("ing"):
            break
        words.append(tok)
        if _is_plural(tok):
            break
    return " ".join(words)


def counts_in_prompt(prompt: str | None) -> dict[str, int]:
    """{class name: count} for every count in the prompt (insertion order); {} when there is none."""
    tokens = TOKEN.findall(str(prompt or "").lower())
    found: dict[str, int] = {}
    for i, tok in enumerate(tokens):
        n = _count(tok)
        name = _phrase(tokens[i + 1:]) if n is not None else ""
        if name:
            found[name] = found.get(name, 0) + n
    return found


def targets_from_prompt(prompt: str | None) -> tuple[list[str], list[int]]:
    """(class names, counts) parsed from the prompt; a RewardError that names the fix when there are none."""
    found = counts_in_prompt(prompt)
    if not found:
        text = str(prompt or "").strip()
        where = f"the prompt {quoted(text)} holds no counts" if text else "the prompt is empty"
        raise RewardError(f"counting reward: class_names and counts are empty and {where}. Fill in class_names and "
                          f"counts, or write counts in the prompt like {EXAMPLE} (number words one..twenty or "
                          "digits, each followed by the plural noun).")
    return list(found), list(found.values())
