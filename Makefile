# The two commands a newcomer needs: `make run` and `make test`. Both install the
# tools they need first (scripts/setup.sh, idempotent).

SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: run services build test test-rust build-site trunk-build setup-run setup-test clean

## make run: build everything in release mode and run the whole shop on this machine.
run: build
	scripts/run-local.sh

## make services: run only the gRPC services (beside `cargo leptos watch`).
services: setup-run
	cargo build --release -p services
	SERVICES_ONLY=1 scripts/run-local.sh

build: setup-run
	cargo leptos build --release
	cargo build --release -p services

## make test: every test: unit, integration (real services on loopback), browser
## (headless Chromium against the real page), and the Trunk build.
test: setup-test build-site test-rust trunk-build

test-rust:
	cargo test --workspace --no-fail-fast

# The page's assets (debug build: no wasm-opt) for the browser tests.
build-site:
	cargo leptos build

trunk-build:
	trunk build

setup-run:
	scripts/setup.sh build release

setup-test:
	scripts/setup.sh build browser trunk

clean:
	cargo clean
	rm -rf dist
