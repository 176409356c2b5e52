# ComfyUI-FlowSearch developer entry points. Each target sets itself up first (scripts/setup.sh is idempotent).
PY := .build/venv/bin/python
export OMP_NUM_THREADS ?= 1

.PHONY: setup demo test bench workflows clean mutate

setup:
	@bash scripts/setup.sh

demo: setup
	@$(PY) scripts/demo.py

test: setup
	@$(PY) -m pytest tests

bench: setup
	@$(PY) bench/sde_overhead.py
	@$(PY) bench/search_overhead.py --quick
	@$(PY) bench/particle_batching.py --quick
	@$(PY) bench/decode_reward_share.py --quick
	@$(PY) bench/reward_per_nfe.py --quick
	@$(PY) bench/memory.py --quick
	@$(PY) bench/gpu_bench.py --smoke
	@$(PY) bench/playground.py --quick

# mutation testing (docs/mutation.md); MUTANTS='sampling.search_core*' runs a subset
mutate: setup
	@set -f; bash scripts/mutate.sh $(MUTANTS)

workflows: setup
	@$(PY) scripts/build_workflows.py

clean:
	rm -rf .build output
