# brama's container image: a release build without the registry simulator (no test keys, no
# embedded default configuration) on Debian slim, run as an unprivileged user. docs/packaging.md
# shows how to run it with a read-only root filesystem.
#
#   docker build --build-arg BRAMA_COMMIT=$(git rev-parse --short=12 HEAD) -t brama .
#
# (.git is not sent to the build, so the commit `brama --version` names comes from the argument.)
#
# The base images are arguments, so that a mirror or a pinned digest can stand in:
#   docker build --build-arg RUST_IMAGE=mirror.example/rust:1.95-bookworm \
#                --build-arg RUNTIME_IMAGE=mirror.example/debian:bookworm-slim -t brama .
# Both stages are bookworm, so the binary finds the glibc it was linked against.
ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
ARG BRAMA_COMMIT
WORKDIR /src
COPY . .
# Plain Dockerfile syntax (no BuildKit cache mounts), so any builder takes it: docker with or
# without BuildKit, podman/buildah, kaniko.
RUN cargo build --release --locked --no-default-features --bin brama

FROM ${RUNTIME_IMAGE}
# curl is only for HEALTHCHECK. No ca-certificates: brama trusts what the global configuration
# and [store] tls_ca_file name, never the system store. A PKCS#11 module for an HSM goes into
# an image built FROM this one.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 brama \
    && useradd --system --uid 10001 --gid brama --home-dir /var/lib/brama --no-create-home \
        --shell /usr/sbin/nologin brama \
    && install -d -o root -g brama -m 0750 /etc/brama \
    && install -d -o brama -g brama -m 0750 /var/lib/brama
COPY --from=build /src/target/release/brama /usr/bin/brama

# Numeric, so that Kubernetes' runAsNonRoot can check it without reading /etc/passwd.
USER 10001:10001
# Relative paths in a configuration resolve from its own directory; the working directory is
# where anything else would land.
WORKDIR /var/lib/brama
# The message log, the OCSP cache and a downloaded global configuration: keep them.
VOLUME ["/var/lib/brama"]
# Client proxy HTTP and HTTPS, server proxy (mutual TLS), OCSP responses, admin (/health).
EXPOSE 8080 8443 5500 5577 5588
# brama drains in-flight requests on SIGTERM ([limits] shutdown_grace_ms, 10 s by default):
# give `docker stop` a longer --time than that.
STOPSIGNAL SIGTERM
# The admin listener's default address, inside the container. The first start downloads the
# global configuration and OCSP responses, hence the start period.
HEALTHCHECK --interval=10s --timeout=3s --start-period=120s --retries=3 \
    CMD ["curl", "-fsS", "--max-time", "2", "-o", "/dev/null", "http://127.0.0.1:5588/health"]
ENTRYPOINT ["/usr/bin/brama"]
CMD ["serve", "--config", "/etc/brama/brama.toml"]
