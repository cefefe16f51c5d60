# syntax=docker/dockerfile:1
#
# The bridge service: a static binary on a distroless base, run as a
# non-root user, no shell. Build it with `docker build -t bridge .`;
# docker-compose.yml builds it for the demos.
#
# Configuration is by BRIDGE_ variables only (`docker run --rm bridge env`
# lists them). BRIDGE_DURABLE_DIR=/var/lib/bridge with a volume there keeps
# a producer's unconfirmed messages across restarts.

# The two images it is built from, public ones. Where no registry can be
# reached, docker-compose.local.yml names local stand-ins instead (see
# .ci/images): the build itself is the same.
ARG GO_IMAGE=golang:1.26
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

# The builder runs on the build machine's platform and cross-compiles for the
# target's: no emulation, and CGO is off anyway. Its Go must not be older than
# go.mod's go line (cmd/bridge/dockerfile_test.go checks it).
FROM --platform=$BUILDPLATFORM ${GO_IMAGE} AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
# Use the toolchain of this image, never download another one.
ENV GOTOOLCHAIN=local GOFLAGS=-mod=readonly
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# The line after the marker is the build; cmd/bridge/compose_test.go runs it
# outside Docker with the same flags and checks the result is a static binary
# that runs. Keep it on one line.
# go-build:
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -buildvcs=false -ldflags="-s -w -buildid=" -o /out/bridge ./cmd/bridge
# The durable queue's directory (BRIDGE_DURABLE_DIR=/var/lib/bridge), to be
# owned by the runtime user: a named volume mounted there takes its owner,
# so it starts out writable without root.
RUN mkdir -p /out/state/bridge

# distroless static: CA certificates, /etc/passwd, tzdata; no shell, no
# package manager. The nonroot variant runs as uid 65532.
FROM ${RUNTIME_IMAGE}
COPY --from=build /out/bridge /bridge
COPY --from=build --chown=65532:65532 /out/state/ /var/lib/
USER 65532:65532
# BRIDGE_HTTP_ADDR (the compose file sets :8080): /healthz, /readyz, /metrics
# and, with BRIDGE_SOURCE=http, POST /v1/messages. 7070 is the TCP carrier's
# default port when this end listens (BRIDGE_TCP_ADDR).
EXPOSE 8080 7070
ENTRYPOINT ["/bridge"]
CMD ["run"]
