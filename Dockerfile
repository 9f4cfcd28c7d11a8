# One runtime image for every process of the shop: the `services` binary (each gRPC
# service is a subcommand), the `server` binary (the web server) and the built page
# (target/site). A container runs one of them, chosen by its command:
#   docker run bookstore services fraud-detection
#   docker run bookstore server                        (the default command)
#
# Two ways to fill it (compose.yaml picks one with BOOKSTORE_BUILD_TARGET):
#   runtime   (the default, last stage) builds everything from source in a Rust
#             builder stage: `docker compose up --build` on any machine with internet,
#             amd64 or arm64 alike. Cache mounts keep the registry, the tools and
#             target/ between builds, so a rebuild after an edit takes minutes.
#   prebuilt  copies binaries already built on the host (`make image-context`
#             stages them in target/image/), for machines that reach no image
#             registry; BuildKit then skips the builder stages entirely.
# Neither image holds the toolchain, the source or any data: data lives in volumes
# mounted at /data.

ARG RUST_IMAGE=rust:1.95-bookworm
ARG BASE_IMAGE=debian:bookworm-slim

# --- builder: the tools the page's build needs (cargo-leptos, wasm-bindgen, wasm-opt),
# installed by the same script `make` uses, in a layer of their own so an edit to the
# code does not rebuild them.
FROM ${RUST_IMAGE} AS toolchain
WORKDIR /src
# Where setup.sh puts npm's tools (wasm-opt), on PATH for the build below.
ENV BOOKSTORE_TOOLS=/opt/bookstore-tools
ENV PATH=/opt/bookstore-tools/node/node_modules/.bin:$PATH
COPY scripts/setup.sh scripts/setup.sh
RUN --mount=type=cache,id=bookstore-cargo-registry,target=/usr/local/cargo/registry \
    scripts/setup.sh build release

FROM toolchain AS builder
COPY . .
RUN --mount=type=cache,id=bookstore-cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id=bookstore-target,target=/src/target \
    cargo leptos build --release --split --precompress \
    && cargo build --release -p services \
    && mkdir -p /out/bin \
    && cp target/release/services target/release/server /out/bin/ \
    && cp -r target/site /out/site

# --- the runtime base: Debian slim, tini as PID 1 (SIGTERM stops a container at once,
# and exited children are reaped), an unprivileged user, /data for the volumes.
FROM ${BASE_IMAGE} AS base
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends tini \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 bookstore \
    && useradd --no-create-home --uid 10001 --gid bookstore --home-dir /nonexistent --shell /usr/sbin/nologin bookstore \
    && mkdir -p /data \
    && chown bookstore:bookstore /data
ENV LEPTOS_SITE_ROOT=/srv/bookstore/site \
    LEPTOS_SITE_ADDR=0.0.0.0:8080
WORKDIR /srv/bookstore
USER 10001:10001
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["server"]

# --- filled from binaries built on the host (make image-context).
FROM base AS prebuilt
COPY target/image/bin/ /usr/local/bin/
COPY target/image/site/ /srv/bookstore/site/

# --- filled by the builder stage (the default).
FROM base AS runtime
COPY --from=builder /out/bin/ /usr/local/bin/
COPY --from=builder /out/site/ /srv/bookstore/site/
