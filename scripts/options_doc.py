"""Print, or write into README.md (--write), the table of every search option: default, accepted values, meaning.

The table is generated from sampling.option_specs (what the search validates) and the methods' own defaults,
so README cannot drift from the code: tests/test_option_specs.py fails when it is stale."""
import argparse
import inspect
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sampling.option_specs import options_table  # noqa: E402
from sampling.search import COMMON_OPTIONS, METHODS, method_options, search  # noqa: E402

START, END = "<!-- options-table:start -->", "<!-- options-table:end -->"


def defaults():
    """{method: {option: default}} plus 'every method' (the common options and search()'s sde)."""
    d = {m: method_options(m) for m in METHODS}
    d["every method"] = {**COMMON_OPTIONS, "sde": inspect.signature(search).parameters["sde"].default}
    return d


def table():
    return options_table(defaults())


def write(readme=ROOT / "README.md"):
    text = readme.read_text()
    new, n = re.subn(re.escape(START) + r"\n(?:.*?\n)?" + re.escape(END), lambda m: f"{START}\n{table()}\n{END}", text,
                     flags=re.S)
    if n != 1:
        raise SystemExit(f"README.md needs one {START} … {END} block")
    readme.write_text(new)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--write", action="store_true", help="update README.md in place")
    if ap.parse_args().write:
        write()
    else:
        print(table())
