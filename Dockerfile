# citybrain image: build in rust:1-bookworm, run in debian:bookworm-slim (same glibc).
#   docker build -t citybrain .
#   docker run -v $PWD/deploy/citybrain/citybrain.yaml:/etc/citybrain/citybrain.yaml:ro citybrain
# docker-compose.yml builds it as the `citybrain` and `simulator` services (docs/operations.md).

FROM rust:1-bookworm AS builder
WORKDIR /src
# Everything the manifest names: the library and binary, the benches it declares, and the NAB
# configuration compiled into the binary (include_str! in src/nab/config.rs).
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY benches benches
COPY nab nab
RUN cargo build --release --locked --bin citybrain \
    && strip target/release/citybrain

FROM debian:bookworm-slim AS runtime
# ca-certificates: TLS to an external broker, InfluxDB or webhooks.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home-dir /var/lib/citybrain --shell /usr/sbin/nologin citybrain \
    && mkdir -p /var/lib/citybrain \
    && chown citybrain:citybrain /var/lib/citybrain
COPY --from=builder /src/target/release/citybrain /usr/local/bin/citybrain
# Definitions and registers next to the config, so its relative paths resolve (compose mounts
# the config and the simulated city's registers over these).
COPY pipelines /etc/citybrain/pipelines
COPY device-profiles /etc/citybrain/device-profiles
COPY registers /etc/citybrain/registers
COPY deploy/citybrain/citybrain.yaml /etc/citybrain/citybrain.yaml
USER citybrain
WORKDIR /var/lib/citybrain
VOLUME ["/var/lib/citybrain"]
EXPOSE 8080
ENTRYPOINT ["citybrain"]
CMD ["run", "--config", "/etc/citybrain/citybrain.yaml"]
