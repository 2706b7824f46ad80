# syntax=docker/dockerfile:1
# Whistle node image: whistled (entrypoint) and whistlectl, on Debian 12.
#
#   docker build -t whistle/whistled:0.1.0 .
#   docker run --rm -p 7400:7400 -p 7401:7401 whistle/whistled:0.1.0
#
# The Helm chart (helm/whistle) runs this image as uid 10001 with a read-only
# root filesystem; RocksDB lives on the volume at /var/lib/whistle.

# ---------------------------------------------------------------- build
FROM debian:12 AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libcaf-dev libprotobuf-dev protobuf-compiler libgrpc++-dev protobuf-compiler-grpc \
      librocksdb-dev prometheus-cpp-dev cmake g++ make pkg-config libgtest-dev libgmock-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release \
 && cmake --build build -j"$(nproc)" --target whistled whistlectl
# Collect the two binaries wherever the build put them, stripped.
RUN mkdir -p /out \
 && for bin in whistled whistlectl; do \
      path="$(find build -type f -name "$bin" -perm -u+x | head -n1)"; \
      [ -n "$path" ] || { echo "$bin was not built" >&2; exit 1; }; \
      install -m 0755 -s "$path" "/out/$bin"; \
    done

# ---------------------------------------------------------------- runtime
FROM debian:12-slim AS runtime
# Only the shared libraries the binaries link against (Debian 12 names, checked
# with ldd on a build): CAF 0.17 core, protobuf 3.21, gRPC 1.51 (with
# grpc++_reflection; pulls abseil, c-ares, re2, OpenSSL), prometheus-cpp 1.0
# core + pull (civetweb), and RocksDB 7.8, which also brings the compression
# libraries (snappy, lz4, zstd, bz2, zlib) that a statically linked RocksDB needs.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libcaf-core0.17 libprotobuf32 libgrpc++1.51 libgrpc29 librocksdb7.8 \
      libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 whistle \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/whistle --shell /usr/sbin/nologin whistle \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/whistle
COPY --from=build /out/whistled /out/whistlectl /usr/local/bin/
# Fail the image build if a shared library is missing, and prove the binary starts.
RUN ! ldd /usr/local/bin/whistled /usr/local/bin/whistlectl | grep 'not found' \
 && /usr/local/bin/whistled --help >/dev/null

USER 10001:10001
WORKDIR /var/lib/whistle
# In a container the node listens on all interfaces; flags or WHISTLE_* env override.
ENV WHISTLE_LISTEN=0.0.0.0:7400 \
    WHISTLE_METRICS_LISTEN=0.0.0.0:7401 \
    WHISTLE_DATA_DIR=/var/lib/whistle/data
EXPOSE 7400 7401
ENTRYPOINT ["/usr/local/bin/whistled"]
