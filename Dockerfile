# syntax=docker/dockerfile:1
# recalcd container image: build in the Rust image, run in a slim Debian as a non-root
# user. Build: `docker build -t recalcd .`
# `recalcd run` serves /healthz, /readyz and /metrics on port 9187; the image's
# HEALTHCHECK asks /readyz with `recalcd healthcheck` (no curl in the image).

# --- builder ------------------------------------------------------------------------
FROM rust:1-bookworm AS builder
WORKDIR /src

# Dependencies first, from the manifests alone, with placeholder targets: this layer
# is cached until Cargo.toml or Cargo.lock change.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches tests/it \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && for b in $(sed -n '/^\[\[bench\]\]/,/^name/s/^name = "\(.*\)"/\1/p' Cargo.toml); do \
           echo 'fn main() {}' > "benches/$b.rs"; \
       done \
    && echo 'fn main() {}' > tests/it/main.rs \
    && cargo build --release --locked --bin recalcd \
    && rm -rf src benches tests

# Then recalcd itself (migrations and the language reference are embedded in the binary).
COPY src src
COPY migrations migrations
COPY docs docs
COPY benches benches
COPY tests tests
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin recalcd

# --- runtime ------------------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin recalcd
COPY --from=builder /src/target/release/recalcd /usr/local/bin/recalcd
COPY config/recalcd.toml /etc/recalcd/recalcd.toml
# The documented defaults; override any key with RECALCD__SECTION__KEY variables
# (the database URL with RECALCD__DATABASE__URL or DATABASE_URL).
ENV RECALCD_CONFIG=/etc/recalcd/recalcd.toml
# The HTTP endpoint on every interface of the container (the default is the loopback).
ENV RECALCD__HTTP__LISTEN=0.0.0.0:9187
EXPOSE 9187
# Ready = the store answers, the schema is current, the last poll is recent. Docker
# reserves exit code 2 (recalcd's configuration error), hence `|| exit 1`.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD recalcd healthcheck || exit 1
USER recalcd
ENTRYPOINT ["recalcd"]
CMD ["run"]
