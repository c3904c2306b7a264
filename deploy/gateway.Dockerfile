# The home gateway, `gateway` (multi-stage). The image also runs the device simulator.
#   docker build -f deploy/gateway.Dockerfile -t gridshare/gateway .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p gridshare-gateway \
    && strip target/release/gateway

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/gridshare-gateway --create-home gateway
COPY --from=build /src/target/release/gateway /usr/local/bin/gateway
COPY --from=build /src/hardware /usr/share/gridshare/hardware
USER gateway
WORKDIR /var/lib/gridshare-gateway
ENTRYPOINT ["gateway"]
CMD ["--help"]
