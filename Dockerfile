# syntax=docker/dockerfile:1
# Multi-stage build of the operator image: a release build on Debian, copied into distroless
# (glibc, CA certificates, no shell, no package manager), running as the non-root user 65532.
FROM rust:1.95-bookworm AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends cmake clang && rm -rf /var/lib/apt/lists/*
# Dependencies first, for layer caching.
COPY Cargo.toml Cargo.lock ./
COPY benches benches
COPY tests tests
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked --bin guardrail-operator || true
COPY src src
COPY crds crds
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin guardrail-operator \
    && strip target/release/guardrail-operator

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="guardrail-operator" \
      org.opencontainers.image.description="LiteLLM guardrail policies as Kubernetes resources" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /src/target/release/guardrail-operator /usr/local/bin/guardrail-operator
USER 65532:65532
EXPOSE 8080 9443
ENTRYPOINT ["/usr/local/bin/guardrail-operator"]
CMD ["run", "--leader-elect"]
