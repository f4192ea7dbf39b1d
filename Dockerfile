# ratebench in a small image: built with the Rust toolchain, run on Debian slim (glibc, CA
# certificates for https targets; nothing else). LuaJIT and ring are compiled in.
#
#   docker build -t ratebench .
#   docker run --rm ratebench -R100 -d10s https://example.internal/
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY lua ./lua
COPY schema ./schema
COPY benches ./benches
RUN cargo build --release --locked --bin ratebench && strip target/release/ratebench

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/ratebench /usr/local/bin/ratebench
COPY lua /usr/share/ratebench/lua
USER 65534:65534
ENTRYPOINT ["/usr/local/bin/ratebench"]
