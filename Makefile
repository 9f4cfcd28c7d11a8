# The two commands a newcomer needs: `make run` and `make test`. Both install the
# tools they need first (scripts/setup.sh, idempotent).

SHELL := /bin/bash

.PHONY: run services build test lint soak test-rust test-load build-site trunk-build setup-run setup-test clean \
	containers image-context test-containers container-engine observe setup-observe chaos simulate fuzz test-fuzz

# Container tools (docker compose, helm, kubernetes-validate) live here, outside the
# clone, so every clone and CI run on a machine shares them.
BOOKSTORE_TOOLS ?= $(HOME)/.cache/bookstore
export BOOKSTORE_TOOLS
# cargo's tools, and npm's (wasm-opt, axe-core) that scripts/setup.sh installs.
export PATH := $(HOME)/.cargo/bin:$(BOOKSTORE_TOOLS)/node/node_modules/.bin:$(PATH)

# The page: wasm optimised for size, split so each page's first load carries only
# its own code, files named by content hash, with brotli and gzip copies beside them.
SITE_FLAGS := --release --split --precompress

## make run: build everything in release mode and run the whole shop on this machine.
run: build
	scripts/run-local.sh

## make services: run only the gRPC services (beside `cargo leptos watch`).
services: setup-run
	cargo build --release -p services
	SERVICES_ONLY=1 scripts/run-local.sh

## make observe: Debian's Prometheus at http://127.0.0.1:9090, scraping every process
## of `make run` (run it beside, in another terminal); its data in .data/prometheus.
## For traces, start `make run` with OTEL_EXPORTER_OTLP_ENDPOINT naming a collector.
observe: setup-observe
	@test -x target/release/services || cargo build --release -p services
	mkdir -p .data/prometheus
	target/release/services prometheus-config > .data/prometheus/prometheus.yml
	eval "$$(target/release/services ports)" && prometheus --config.file=.data/prometheus/prometheus.yml \
		--storage.tsdb.path=.data/prometheus/data --web.listen-address=127.0.0.1:$$PROMETHEUS_PORT \
		--enable-feature=exemplar-storage

## make containers: the whole shop in Docker containers from binaries built here (for
## machines that reach no image registry; elsewhere `docker compose up --build`).
containers: build container-engine
	$(MAKE) image-context PROFILE=release
	BOOKSTORE_BUILD_TARGET=prebuilt docker compose up --build

## make chaos: the long chaos run (docs/reliability.md): the shop as processes, 2,000
## checkouts at 10 a second while a seeded nemesis kills, pauses and cuts off one
## process at a time, then the history checked. CHAOS_SEED=n replays a schedule;
## CHAOS_ORDERS and CHAOS_RATE change its size. make test runs a short one.
chaos: setup-run
	scripts/setup.sh chaos
	cargo build -p services
	CHAOS_ORDERS=$${CHAOS_ORDERS:-2000} cargo test -p server --test chaos under_faults -- --nocapture

## make soak: the shop (release build) as processes taking 200,000 checkouts with a
## 60 s retention window; prints every process's memory and every data folder's
## size at each fifth (SOAK_ORDERS, SOAK_RATE, SOAK_RETENTION_SECS change it).
soak: setup-run
	cargo build --release -p server -p services
	SOAK_BINARIES=$(CURDIR)/target/release SOAK_ORDERS=$${SOAK_ORDERS:-200000} SOAK_RATE=$${SOAK_RATE:-200} \
		SOAK_RETENTION_SECS=$${SOAK_RETENTION_SECS:-60} cargo test -p server --test chaos soak -- --nocapture

## make simulate: the execution simulation over 100,000 seeds (make test runs 1,000);
## SIM_SEED=n replays one seed and prints its history.
simulate:
	SIM_SEEDS=$${SIM_SEEDS:-100000} cargo test --release -p services --lib simulation::every -- --nocapture

build: setup-run
	cargo leptos build $(SITE_FLAGS)
	cargo build --release -p services

## make test: every test: unit, integration (real services on loopback), browser
## (headless Chromium against the real page), the load smoke run (the Postman
## collection and loadgen against the shop), the Trunk build, the containers.
test: setup-test lint build-site test-rust test-load test-fuzz trunk-build test-containers

## The code's shape: formatted, clippy-clean (warnings are errors; the workspace's
## lints are in Cargo.toml, and the page's wasm-only code is checked too), and the
## code map names every crate and module.
lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p app --features hydrate --target wasm32-unknown-unknown -- -D warnings
	scripts/check-architecture.sh

test-rust:
	cargo test --workspace --no-fail-fast

# The cargo-fuzz targets (fuzz/), 20 seconds each, on nightly; skipped, saying why,
# where there is no nightly toolchain.
test-fuzz:
	scripts/fuzz.sh

## make fuzz: each fuzz target for FUZZ_SECONDS (300 unless set).
fuzz:
	scripts/setup.sh fuzz
	FUZZ_SECONDS=$${FUZZ_SECONDS:-300} scripts/fuzz.sh

# The shop from the debug binaries test-rust built, the Postman collection through
# newman, and ten seconds of loadgen (its checks must pass).
test-load:
	cargo build -p loadgen
	scripts/load-smoke.sh

# The page as it ships (release), for the browser tests; the servers the tests
# run are debug builds (`cargo test`), which serve it the same way.
build-site:
	cargo leptos build $(SITE_FLAGS) --frontend-only

trunk-build:
	trunk build

# The image's build context for the prebuilt target: the binaries of PROFILE
# (release from `make build`; debug is what `make test` built) and the page.
PROFILE ?= release
image-context:
	@test -x target/$(PROFILE)/services -a -x target/$(PROFILE)/server -a -d target/site/pkg || \
		{ echo "target/$(PROFILE) has no services and server binaries (or target/site no page): build first" >&2; exit 1; }
	rm -rf target/image && mkdir -p target/image/bin
	strip -o target/image/bin/services target/$(PROFILE)/services
	strip -o target/image/bin/server target/$(PROFILE)/server
	cp -r target/site target/image/site

container-engine:
	scripts/container-tools.sh install engine base-image

## The Compose stack for real on the Docker engine, and the Helm chart rendered
## and validated (no cluster runs here), with the binaries `make test` built.
test-containers: container-engine
	$(MAKE) image-context PROFILE=debug
	cd deploy/tests && BOOKSTORE_BIN=$(CURDIR)/target/debug HELM=$(BOOKSTORE_TOOLS)/bin/helm \
		KUBERNETES_VALIDATE=$(BOOKSTORE_TOOLS)/venv/bin/kubernetes-validate \
		$(BOOKSTORE_TOOLS)/venv/bin/python chart_test.py
	cd deploy/tests && BOOKSTORE_BIN=$(CURDIR)/target/debug $(BOOKSTORE_TOOLS)/venv/bin/python compose_test.py

setup-run:
	scripts/setup.sh build release

setup-test:
	scripts/setup.sh build release browser trunk load observe fuzz chaos

setup-observe:
	scripts/setup.sh observe

clean:
	cargo clean
	rm -rf dist
