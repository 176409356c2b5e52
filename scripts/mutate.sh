#!/usr/bin/env bash
# Mutation testing (issue 11; docs/mutation.md). mutmut 3 (scripts/requirements-dev.txt), configured in
# pyproject.toml [tool.mutmut]: it copies the scope into mutants/ (never touching the tree) and runs the fast
# pure-torch tests there.
#
#   scripts/mutate.sh                          every mutant of the scope (hours on 2 cores), then the score
#   scripts/mutate.sh 'sampling.search_core*'  only mutants whose names match (mutmut's globs), then the score
#   scripts/mutate.sh --score [GLOB...]        the score of the last run (per module; equivalents excluded)
#   scripts/mutate.sh --sample N [GLOB...]     N mutants drawn at random (seed 11) among those matching, run
#                                              and scored: an unbiased kill-rate estimate at a fraction of the cost
#   scripts/mutate.sh --hand                   the hand mutants: issue 11's named survivors, the seed lines
#                                              of nodes/search_glue.py and the ranking check of nodes/decoder.py
#                                              (ComfyUI in-process, out of mutmut's reach)
# MUTATE_JOBS (default 2) sets mutmut's --max-children.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="$ROOT/.build/venv/bin/python"
export OMP_NUM_THREADS=1 FLOWSEARCH_TINY_REWARDS="$ROOT/.build/base/models/rewards"

score() {
  "$PY" - "$@" <<'EOF'
import fnmatch, json, pathlib, re, sys
from collections import Counter, defaultdict
status = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", 35: "suspicious",
          36: "timeout", 24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout", 37: "killed", None: "not checked",
          -11: "segfault", -9: "segfault"}
equivalent = set(re.findall(r"`([\w.ǁ]+__mutmut_\d+)`", pathlib.Path("docs/mutation.md").read_text("utf-8")))
globs = sys.argv[1:] or ["*"]
by_module, survivors = defaultdict(Counter), []
for meta in sorted(pathlib.Path("mutants").rglob("*.py.meta")):
    for name, code in json.loads(meta.read_text("utf-8"))["exit_code_by_key"].items():
        if not any(fnmatch.fnmatch(name, g) for g in globs):
            continue
        st = "equivalent" if name in equivalent else status.get(code, "suspicious")
        by_module[meta.name[:-8]][st] += 1
        if st in ("survived", "no tests"):
            survivors.append(f"{name}  ({st})")
tot = Counter()
print(f"{'module':32} {'killed':>7} {'timeout':>7} {'surv.':>6} {'no test':>7} {'equiv.':>6} {'unrun':>6}  kill rate")
for mod, c in sorted(by_module.items()):
    tot.update(c)
    det, und = c["killed"] + c["timeout"] + c["segfault"], c["survived"] + c["no tests"]
    rate = f"{100 * det / (det + und):.1f} %" if det + und else "-"
    print(f"{mod:32} {c['killed']:7} {c['timeout']:7} {c['survived']:6} {c['no tests']:7} {c['equivalent']:6} "
          f"{c['not checked'] + c['skipped'] + c['suspicious']:6}  {rate}")
det, und = tot["killed"] + tot["timeout"] + tot["segfault"], tot["survived"] + tot["no tests"]
print(f"{'TOTAL':32} {tot['killed']:7} {tot['timeout']:7} {tot['survived']:6} {tot['no tests']:7} "
      f"{tot['equivalent']:6} {tot['not checked'] + tot['skipped'] + tot['suspicious']:6}  "
      f"{100 * det / max(det + und, 1):.1f} % of {det + und} non-equivalent mutants run")
pathlib.Path("mutants/survivors.txt").write_text("\n".join(survivors) + "\n", "utf-8")
print(f"survivors: mutants/survivors.txt ({len(survivors)}); see one with: .build/venv/bin/mutmut show NAME")
EOF
}

hand() {
  # issue 11's named survivors, and the seed lines of nodes/search_glue.py (ComfyUI glue, out of mutmut's reach),
  # as hand mutants: each is applied to a fresh copy of the tree (tracked + untracked files, .build linked) and
  # the pins run there; the unmutated copy must pass first, so that a kill is the mutant's doing
  local tmp; tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' RETURN
  local killed=0 total=0
  if ! hand_pins "$tmp" "" "" "" || ! hand_pins "$tmp" nodes/search_glue.py "" "" \
     || ! hand_pins "$tmp" nodes/decoder.py "" ""; then
    echo "the unmutated copy fails the pins: fix that first"; return 1
  fi
  while IFS='|' read -r file old new; do
    [ -n "$file" ] || continue
    total=$((total + 1))
    if hand_pins "$tmp" "$file" "$old" "$new" </dev/null; then echo "SURVIVED  $file: $old  ->  $new"
    else killed=$((killed + 1)); echo "killed    $file: $old  ->  $new"; fi
  done <<'EOF'
sampling/sde.py|g = diffusion_coefficient(name, s, diffusion_norm, ip)|g = diffusion_coefficient(name, s_next, diffusion_norm, ip)
sampling/search_core.py|        g = self.g(s)|        g = self.g(s_next)
sampling/search_core.py|float(r.max()) > self.best_r:|float(r.max()) > self.best_r + 1e-3:
sampling/search_core.py|return 0.5 * (1.0 + torch.erf(z / math.sqrt(2.0)))|return 0.5 * (1.0 + torch.erf(z / 2.0))
sampling/search_core.py|math.sqrt(1.0 + float(lam) ** 2)|math.sqrt(1.0 + float(lam))
sampling/search_methods.py|float(parts.r[j]) > pivot[2]|float(parts.r[j]) < pivot[2]
sampling/search_methods.py|descending=True, stable=True|descending=False, stable=True
sampling/search_methods.py|return torch.arange(n) * k + j|return j
sampling/search_methods.py|cur[idx], torch.zeros(m, dtype=torch.float64)|cur[idx], logw[idx]
sampling/search_rbf.py|ch.used >= min(min_draws, ch.cap) and ch.best_r > ch.r_star|ch.used >= min_draws and ch.best_r > ch.r_star
rewards/simple.py|format="JPEG", quality=self.quality)|format="JPEG")
sampling/ksampler.py|range(xb.shape[0])|[0] * xb.shape[0]
nodes/search_options.py|if not isinstance(opts, dict):|if False:
nodes/search_glue.py|seed = int(extra_args.get("seed", 0))|seed = 0
nodes/search_glue.py|seed = int(extra_args.get("seed", 0))|seed = int(extra_args.get("noise_seed", 0))
nodes/search_glue.py|seed=seed + i,|seed=seed,
nodes/search_glue.py|seed=seed + i,|seed=seed - i,
nodes/search_glue.py|seed=seed + i,|seed=i,
nodes/search_glue.py|seed=seed + i,|seed=seed + i + 1,
nodes/decoder.py|"kept": rho >= self.MIN_SPEARMAN and top1 and not tied}|"kept": rho >= self.MIN_SPEARMAN and top1}
nodes/decoder.py|"kept": rho >= self.MIN_SPEARMAN and top1 and not tied}|"kept": (rho >= self.MIN_SPEARMAN or top1) and not tied}
nodes/decoder.py|tied = bool((a == a[0]).all())|tied = bool((a == a[0]).any())
nodes/decoder.py|ROWS, MIN_SPEARMAN = 8, 0.95|ROWS, MIN_SPEARMAN = 8, 0.3
nodes/decoder.py|top1 = spearman(a, b), int(a.argmax()) == int(b.argmax())|top1 = spearman(a, b), True
nodes/decoder.py|not routes or (self.ranking is not None and self.ranking.failed):|not routes:
nodes/decoder.py|            return self.ranking(x0, self._full(x0), routes)|            return routes[0][1](x0)
nodes/decoder.py|        return routes[self.ranking.choice][1](x0)|        return routes[0][1](x0)
nodes/decoder.py|self.choice = next((i for i, r in enumerate(rows) if r["kept"]), None)|self.choice = next((i for i, r in reversed(list(enumerate(rows))) if r["kept"]), None)
nodes/decoder.py|pick = rows[self.choice if self.choice is not None else -1]|pick = rows[0]
nodes/decoder.py|sizes = [size] + ([(h, w)] if|sizes = [size] + ([] if
nodes/decoder.py|if self.reward_resolution == "auto" and size != (h, w) else []|if size != (h, w) else []
nodes/decoder.py|size=(a, b))) for a, b in sizes]|size=(a, b))) for a, b in sizes[::-1]]
nodes/decoder.py|            short = math.ceil(s / up)|            short = math.floor(s / up)
nodes/decoder.py|    ra, rb = ra - ra.mean(), rb - rb.mean()|    ra, rb = ra, rb - rb.mean()
EOF
  echo "hand mutants: $killed of $total killed"
}

hand_pins() {  # hand_pins TMP FILE OLD NEW: fresh copy in TMP/t, OLD → NEW in FILE (none if OLD is empty), pins
  local t="$1/t" tests
  rm -rf "$t"; mkdir -p "$t"
  git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$t" 2>/dev/null || true
  ln -s "$ROOT/.build" "$t/.build"
  if [ -n "$3" ]; then
    "$PY" - "$t/$2" "$3" "$4" <<'EOF' || return 0
import sys
p, old, new = sys.argv[1:]
s = open(p, encoding="utf-8").read()
if s.count(old) != 1:
    sys.exit(f"hand mutant out of date: {old!r} is not once in {p}")
open(p, "w", encoding="utf-8").write(s.replace(old, new))
EOF
  fi
  if [ "$2" = nodes/search_glue.py ]; then
    tests=(tests/test_pins_node_seed.py "tests/test_search_nodes.py::test_same_seed_same_image_any_max_batch")
  elif [ "$2" = nodes/decoder.py ]; then  # the reward decoder's size rule and ranking check (issue 13)
    tests=(tests/test_perf_options.py tests/test_playground_decoder.py -k "ranking or auto_rule or auto_decodes or taesd")
  else
    tests=(tests/test_pins_search.py tests/test_pins_rewards.py tests/test_pins_nodes.py)
  fi
  (cd "$t" && "$PY" -m pytest -x -q -p no:cacheprovider "${tests[@]}" >/dev/null 2>&1)
}

sample() {  # sample N GLOB...: N mutant names drawn with a fixed seed among the generated ones matching GLOB
  [ -n "$(find mutants -name '*.py.meta' 2>/dev/null | head -1)" ] || generate >&2
  "$PY" - "$@" <<'EOF'
import fnmatch, json, pathlib, random, sys
n, globs = int(sys.argv[1]), sys.argv[2:] or ["*"]
names = sorted(k for m in pathlib.Path("mutants").rglob("*.py.meta")
               for k in json.loads(m.read_text("utf-8"))["exit_code_by_key"] if any(fnmatch.fnmatch(k, g) for g in globs))
print("\n".join(sorted(random.Random(11).sample(names, min(n, len(names))))))
EOF
}

generate() {  # mutmut's own mutant generation (the first step of `mutmut run`), without running anything
  "$PY" -c "
import os
from mutmut.mutation.trampoline import set_mutant_under_test
import mutmut.__main__ as m
set_mutant_under_test('mutant_generation')
os.makedirs('mutants', exist_ok=True)
m.copy_src_dir(); m.copy_also_copy_files(); m.setup_source_paths(); m.store_lines_covered_by_tests()
m.create_mutants(int(os.environ.get('MUTATE_JOBS', '2')))"
}

case "${1:-}" in
  --score) shift; score "$@" ;;
  --sample) shift; n="$1"; shift
     mapfile -t picked < <(sample "$n" "$@")
     echo "running ${#picked[@]} sampled mutants (list: mutants/sample.txt)"
     printf '%s\n' "${picked[@]}" > mutants/sample.txt
     "$ROOT/.build/venv/bin/mutmut" run --max-children "${MUTATE_JOBS:-2}" "${picked[@]}" || true
     score "${picked[@]}" ;;
  --hand) hand ;;
  *) "$ROOT/.build/venv/bin/mutmut" run --max-children "${MUTATE_JOBS:-2}" "$@" || true
     score "$@" ;;
esac
