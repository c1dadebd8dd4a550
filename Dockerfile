# syntax=docker/dockerfile:1
# pixelguard container image: built in the official Rust image, run on Debian slim as a non-root
# user. Build:  docker build -t pixelguard:0.1.0 .
# Run:          docker run -d --name pixelguard -p 53:53/udp -p 53:53/tcp -p 127.0.0.1:9153:9153 pixelguard:0.1.0
#
# Zones match client addresses, so those must reach pixelguard unchanged. Docker's published
# ports (iptables DNAT) keep the source address of clients on other machines; queries from the
# Docker host itself arrive from the bridge gateway. On Kubernetes use a Service with
# externalTrafficPolicy: Local (deploy/kubernetes/) or hostNetwork. docs/operations.md has more.
#
# Port 53 as non-root: Docker 20.10 and later set net.ipv4.ip_unprivileged_port_start=0 in the
# container's network namespace, and deploy/kubernetes sets it to 53 in the pod. With
# --network host neither applies: there, run with --user 0 --cap-drop ALL --cap-add NET_BIND_SERVICE.

ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
# The release profile keeps line tables for the .deb's dbgsym package; the image needs none.
ENV CARGO_PROFILE_RELEASE_DEBUG=0 \
    CARGO_PROFILE_RELEASE_STRIP=symbols
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin pixelguard \
    && install -m 0755 target/release/pixelguard /usr/local/bin/pixelguard \
    && /usr/local/bin/pixelguard check --config deploy/kubernetes/pixelguard.toml

FROM ${RUNTIME_IMAGE}
# The same uid/gid as runAsUser/runAsGroup in deploy/kubernetes/deployment.yaml.
RUN groupadd --system --gid 10053 pixelguard \
    && useradd --system --uid 10053 --gid pixelguard --home-dir /var/lib/pixelguard \
        --no-create-home --shell /usr/sbin/nologin pixelguard \
    && install -d -o pixelguard -g pixelguard -m 0750 /var/lib/pixelguard /var/log/pixelguard
COPY --from=build /usr/local/bin/pixelguard /usr/bin/pixelguard
# Listens on 0.0.0.0:53, admin on 0.0.0.0:9153, every private range in one zone in log mode.
# Mount your own config over /etc/pixelguard (Kubernetes: the ConfigMap does).
COPY deploy/kubernetes/pixelguard.toml deploy/kubernetes/allow.txt /etc/pixelguard/
COPY blocklists/ /usr/share/pixelguard/blocklists/
ENV NO_COLOR=1
USER 10053:10053
EXPOSE 53/udp 53/tcp 9153/tcp
VOLUME ["/var/lib/pixelguard"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/pixelguard"]
CMD ["run", "--config", "/etc/pixelguard/pixelguard.toml"]
