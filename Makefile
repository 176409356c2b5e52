# ComfyUI-FlowSearch developer entry points. Each target sets itself up first (scripts/setup.sh is idempotent).
PY := .build/venv/bin/python
export OMP_NUM_THREADS ?= 1

.PHONY: setup demo test bench workflows clean

setup:
	@bash scripts/setup.sh

demo: setup
	@$(PY) scripts/demo.py

test: setup
	@$(PY) -m pytest tests

bench: setup
	@$(PY) bench/sde_overhead.py

workflows: setup
	@$(PY) scripts/build_workflows.py

clean:
	rm -rf .build output
