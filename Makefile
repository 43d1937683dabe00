# The README's two commands: `make demo` (the main job) and `make test` (the full test suite).
# Both set up everything they need on a fresh machine.
.PHONY: setup demo test lint typecheck unit bench golden

setup:
	bash scripts/bootstrap.sh

demo: setup
	.venv/bin/harness run suites/default.yaml
	.venv/bin/harness report "$$(ls -dt reports/default-*/ | head -1)"

lint: setup
	.venv/bin/ruff check harness tests benchmarks noxfile.py
	bash scripts/lint-unsafe.sh
	.venv/bin/lint-imports --no-cache

typecheck: setup
	.venv/bin/mypy harness

unit: setup
	bash scripts/install-browser.sh
	HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -n 2 -q

test: lint typecheck unit

bench: setup
	.venv/bin/python -m pytest benchmarks --benchmark-only -p no:xdist

golden: setup
	.venv/bin/harness schema -o harness/schema/record.schema.json
	.venv/bin/python -m tests.golden --regenerate
