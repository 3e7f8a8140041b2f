# syntax=docker/dockerfile:1
# One image for every huimin service: `huimin serve <identity|ledger|registry|whistle|gateway>`
# and `huimin migrate`. Only the `huimin` binary goes in; the local WeChat
# (huimin-wechat-sim) is a development tool and is never built here.
#
#   docker build -t huimin:0.1.0 .
#
# No Docker engine runs in this project's CI, so CI lints this file
# (hadolint, scripts/check-manifests) but never builds the image.

# --- build -------------------------------------------------------------------
# The workspace's rust-version is 1.88; any newer stable builds it. The
# Debian bookworm image matches the runtime's glibc (distroless debian12).
FROM rust:1.88-bookworm AS build
WORKDIR /src
# Everything the workspace needs to resolve (.dockerignore keeps target/, .git
# and local data out). --locked: the image is built from Cargo.lock as committed.
COPY . .
# Cache mounts keep the registry and target/ between builds; the binary is
# copied out of the cache in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p huimin \
    && install -D -m 0555 target/release/huimin /out/huimin

# --- run ---------------------------------------------------------------------
# distroless/cc: glibc, libgcc and CA certificates, no shell and no package
# manager. The `nonroot` variant runs as uid/gid 65532, the same ids the chart's
# securityContext asks for; the chart also mounts the root filesystem read-only.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/huimin /usr/local/bin/huimin
USER 65532:65532
# gRPC, the gateway's HTTP, the admin port (/metrics, /healthz, /readyz).
EXPOSE 50051 8080 9090
ENTRYPOINT ["/usr/local/bin/huimin"]
CMD ["serve", "all"]
