# The market service, `gridshare` (multi-stage: build with the Rust toolchain, run on a slim base).
#   docker build -f deploy/market.Dockerfile -t gridshare/market .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p gridshare \
    && strip target/release/gridshare

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/gridshare --create-home gridshare
COPY --from=build /src/target/release/gridshare /usr/local/bin/gridshare
COPY --from=build /src/hardware /usr/share/gridshare/hardware
ENV GRIDSHARE_DATA_DIR=/var/lib/gridshare GRIDSHARE_HARDWARE=/usr/share/gridshare/hardware
USER gridshare
WORKDIR /var/lib/gridshare
EXPOSE 8080
ENTRYPOINT ["gridshare"]
CMD ["serve"]
