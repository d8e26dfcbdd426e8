.PHONY: help install dev test test-rust test-python lint bench
PY ?= python

help:  ## list the developer commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

install:  ## install sigmarrow with the test and lint extras (builds the Rust engine in release mode)
	$(PY) -m pip install '.[test,spark,lint]'

dev:  ## rebuild the engine in place after a Rust change (editable install)
	cargo build --release -p sigmarrow-py
	cp target/release/lib_engine.so python/sigmarrow/_engine.abi3.so.new
	mv -f python/sigmarrow/_engine.abi3.so.new python/sigmarrow/_engine.abi3.so  # running processes keep the old file

test: test-rust test-python  ## the whole test suite (what .ci/run runs)

test-rust:  ## cargo tests of the pure-Rust core
	cargo test --release -p sigmarrow-core

test-python:  ## pytest: semantics on both engines, SigmaHQ corpus and regression, CLI, Spark
	$(PY) -m pytest -q

lint:  ## rustfmt, clippy, ruff, mypy, the stub test of the extension, the import contracts
	cargo fmt --all --check
	cargo clippy --release --all-targets -- -D warnings
	$(PY) -m ruff check python tests benches
	$(PY) -m mypy
	$(PY) -m mypy.stubtest sigmarrow._engine --mypy-config-file pyproject.toml
	lint-imports

bench:  ## the headline benchmark table on generated data (about a minute; benches/README.md lists the others)
	$(PY) benches/headline.py
