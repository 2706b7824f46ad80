# syntax=docker/dockerfile:1
# Whistle node image: whistled (entrypoint) and whistlectl, on Debian 12; also the leaders'
# console gateway (whistle-console) and its built page (/usr/share/whistle/console).
#
#   app/console/web/build.sh                           # the console's page, first (npm)
#   docker build -t whistle/whistled:0.1.0 --build-arg REVISION=$(git rev-parse --short HEAD) .
#   docker run --rm -p 7400:7400 -p 7401:7401 whistle/whistled:0.1.0
#
# The Helm chart (helm/whistle) runs this image as uid 10001 with a read-only
# root filesystem; RocksDB lives on the volume at /var/lib/whistle.

# Base images, pinned by digest: Docker Hub's debian:12.11 and debian:12.11-slim
# (multi-arch index digests, as pinned by public nixpkgs-style dockerTools
# manifests that verify the pulled content). This tree was made without a Docker
# engine, so the pull itself was not run here: to move to a newer point release,
#   docker buildx imagetools inspect debian:12-slim   # prints the index digest
# and pass --build-arg BUILD_IMAGE=... / RUNTIME_IMAGE=... or edit these lines.
ARG BUILD_IMAGE=debian:12.11@sha256:b6507e340c43553136f5078284c8c68d86ec8262b1724dde73c325e8d3dcdeba
ARG RUNTIME_IMAGE=debian:12.11-slim@sha256:2424c1850714a4d94666ec928e24d86de958646737b1d113f5b2207be44d37d8

# ---------------------------------------------------------------- build
FROM ${BUILD_IMAGE} AS build
# The build type CI tests (.ci/test configures RelWithDebInfo); symbols are
# stripped from the installed binaries below.
ARG BUILD_TYPE=RelWithDebInfo
# The git revision (whistled --version, whistle_build_info): .git is not in the
# build context, so pass it: --build-arg REVISION=$(git rev-parse --short HEAD).
ARG REVISION=unknown
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libcaf-dev libprotobuf-dev protobuf-compiler libgrpc++-dev protobuf-compiler-grpc \
      librocksdb-dev prometheus-cpp-dev cmake g++ make pkg-config libgtest-dev libgmock-dev \
      libjwt-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE="${BUILD_TYPE}" -DWHISTLE_REVISION="${REVISION}" \
 && cmake --build build -j"$(nproc)" --target whistled whistlectl whistle-console
# Collect the binaries wherever the build put them, stripped.
RUN mkdir -p /out \
 && for bin in whistled whistlectl whistle-console; do \
      path="$(find build -type f -name "$bin" -perm -u+x | head -n1)"; \
      [ -n "$path" ] || { echo "$bin was not built" >&2; exit 1; }; \
      install -m 0755 -s "$path" "/out/$bin"; \
    done
# The console's page is built BEFORE docker build (app/console/web/build.sh: npm, Node.js >= 18),
# so this stage needs no npm registry. Its files ship as built.
RUN test -f app/console/web/dist/index.html \
      || { echo "app/console/web/dist is missing: cd app/console/web && npm ci && npm run build" >&2; exit 1; } \
 && mkdir -p /out/console && cp -R app/console/web/dist/. /out/console/

# ---------------------------------------------------------------- runtime
FROM ${RUNTIME_IMAGE} AS runtime
ARG REVISION=unknown
ARG RUNTIME_IMAGE
LABEL org.opencontainers.image.title="whistled" \
      org.opencontainers.image.description="Whistle node: coordination hub for grid-based municipal governance (whistled and whistlectl)" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="${RUNTIME_IMAGE}" \
      org.opencontainers.image.documentation="docs/operations.md"
# Only the shared libraries the binaries link against (Debian 12 names, checked
# with ldd on a build): CAF 0.17 core, protobuf 3.21, gRPC 1.51 (with
# grpc++_reflection; pulls abseil, c-ares, re2, OpenSSL), prometheus-cpp 1.0
# core + pull (civetweb), libjwt 1.10 (token verification, OpenSSL backend), and RocksDB 7.8, which also brings the compression
# libraries (snappy, lz4, zstd, bz2, zlib) that a statically linked RocksDB needs.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libcaf-core0.17 libprotobuf32 libgrpc++1.51 libgrpc29 librocksdb7.8 \
      libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 libjwt0 libssl3 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 whistle \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/whistle --shell /usr/sbin/nologin whistle \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/whistle
COPY --from=build /out/whistled /out/whistlectl /out/whistle-console /usr/local/bin/
COPY --from=build /out/console /usr/share/whistle/console
# Fail the image build if a shared library is missing, and prove the binaries start.
RUN ! ldd /usr/local/bin/whistled /usr/local/bin/whistlectl /usr/local/bin/whistle-console | grep 'not found' \
 && /usr/local/bin/whistled --help >/dev/null && /usr/local/bin/whistle-console --help >/dev/null \
 && test -f /usr/share/whistle/console/index.html

USER 10001:10001
WORKDIR /var/lib/whistle
# In a container the node listens on all interfaces; flags or WHISTLE_* env override.
ENV WHISTLE_LISTEN=0.0.0.0:7400 \
    WHISTLE_METRICS_LISTEN=0.0.0.0:7401 \
    WHISTLE_DATA_DIR=/var/lib/whistle/data
# whistle-console (the chart runs it as its own Deployment, same image):
#   whistle-console --listen 0.0.0.0:7480 --node NODE:7400 --assets /usr/share/whistle/console
EXPOSE 7400 7401 7480
# gRPC health of the whole server (SERVING once the store is open, NOT_SERVING
# while draining); needs no identity. WHISTLE_SERVER is not set in the image,
# so it asks 127.0.0.1:7400 (the port of WHISTLE_LISTEN above).
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["/usr/local/bin/whistlectl", "--timeout-ms", "2000", "health"]
ENTRYPOINT ["/usr/local/bin/whistled"]
