# syntax=docker/dockerfile:1
#
# One image for every mesh service (docs/operations.md, "Images"): the five
# binaries share libmesh, the data files and the runtime libraries, so one
# image is smaller in total than five, is built and scanned once, and a
# rollout never mixes builds of different services by accident. The service
# is chosen by the container's command: mesh-router, mesh-llm, mesh-tools,
# mesh-memory or mesh-gateway (each has --help).
#
#   docker build -t insurance-mesh:dev .
#   docker run --rm insurance-mesh:dev mesh-gateway --help

ARG DEBIAN_RELEASE=bookworm

# ---- build stage: compilers and -dev packages live only here ----
FROM debian:${DEBIAN_RELEASE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config \
      libzmq3-dev libmsgpack-dev libhiredis-dev libuv1-dev libcurl4-openssl-dev \
      libjansson-dev libhttp-parser-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY include include
COPY lib lib
COPY services services
COPY utils utils
COPY bench bench
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DMESH_BUILD_TESTS=OFF \
 && cmake --build /build -j"$(nproc)" \
      --target mesh-router mesh-llm mesh-tools mesh-memory mesh-gateway mesh-healthcheck \
 && strip /build/bin/mesh-*

# ---- runtime stage: shared libraries only, no compiler, no shell tools added ----
FROM debian:${DEBIAN_RELEASE}-slim AS runtime
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libzmq5 libmsgpackc2 libhiredis0.14 libuv1 libcurl4 libjansson4 libhttp-parser2.9 \
      libssl3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 mesh \
 && useradd --system --uid 10001 --gid mesh --no-create-home --shell /usr/sbin/nologin mesh
COPY --from=build /build/bin/mesh-router /build/bin/mesh-llm /build/bin/mesh-tools \
     /build/bin/mesh-memory /build/bin/mesh-gateway /build/bin/mesh-healthcheck /usr/local/bin/
COPY data /usr/share/mesh/data
COPY web /usr/share/mesh/web
# In a container every listener faces the pod/compose network, not loopback;
# everything else keeps the binaries' defaults (docs/configuration.md).
ENV MESH_DATA_DIR=/usr/share/mesh/data \
    MESH_WEB_DIR=/usr/share/mesh/web \
    MESH_HTTP_HOST=0.0.0.0 \
    MESH_METRICS_HOST=0.0.0.0 \
    MESH_FRONTEND_BIND=tcp://0.0.0.0:7001 \
    MESH_BACKEND_BIND=tcp://0.0.0.0:7002
USER 10001:10001
# SIGTERM drains (stop taking work, finish or hand back in-flight work within
# MESH_DRAIN_MS, exit 0); give the runtime at least that long before SIGKILL.
STOPSIGNAL SIGTERM
EXPOSE 8080 7001 7002 9101 9102 9103 9104
CMD ["mesh-gateway", "--help"]
