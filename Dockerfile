# The Pluto-Duck server, for the hybrid profile behind a load balancer (docker-compose.yml).
#   docker build -t pluto-duck .
# DuckDB is linked, not compiled: the official libduckdb 1.5.5 (npm) and its signed extensions (PyPI), as
# scripts/setup.sh installs them on a development machine.
FROM rust:1.95-bookworm AS build
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends npm python3-pip unzip >/dev/null \
    && rm -rf /var/lib/apt/lists/*
ENV DUCKDB_VERSION=1.5.5 \
    DUCKDB_NPM_PKG=@duckdb/node-bindings-linux-x64@1.5.5-r.1 \
    DUCKDB_EXTENSIONS="postgres_scanner mysql_scanner sqlite_scanner httpfs ducklake"
WORKDIR /deps
RUN npm pack --silent "$DUCKDB_NPM_PKG" && tar xzf ./*.tgz \
    && mkdir -p /opt/pluto-duck/lib && cp "$(find package -name libduckdb.so | head -n1)" /opt/pluto-duck/lib/ \
    && mkdir -p /opt/pluto-duck/extensions/v$DUCKDB_VERSION/linux_amd64 \
    && for ext in $DUCKDB_EXTENSIONS; do \
         pip download -q --no-deps --only-binary=:all: -d "w-$ext" \
           "duckdb-extension-$(echo $ext | tr _ -)==$DUCKDB_VERSION" \
         && (cd "w-$ext" && unzip -q -o ./*.whl) \
         && cp "$(find "w-$ext" -name "$ext.duckdb_extension" | head -n1)" \
              /opt/pluto-duck/extensions/v$DUCKDB_VERSION/linux_amd64/; \
       done
WORKDIR /src
COPY . .
ENV DUCKDB_LIB_DIR=/opt/pluto-duck/lib \
    RUSTFLAGS="-C link-arg=-Wl,-rpath,/opt/pluto-duck/lib"
RUN cargo build --release --locked -p pluto-duck && cp target/release/pluto-duck /opt/pluto-duck/pluto-duck

FROM debian:bookworm-slim
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends ca-certificates curl >/dev/null \
    && rm -rf /var/lib/apt/lists/* && useradd --system --create-home --home-dir /var/lib/pluto-duck pluto
COPY --from=build /opt/pluto-duck /opt/pluto-duck
ENV PLUTODUCK_DATA_DIR=/var/lib/pluto-duck \
    PLUTODUCK_DUCKDB__EXTENSION_DIRECTORY=/opt/pluto-duck/extensions \
    PLUTODUCK_SECRETS__BACKEND=file \
    PLUTODUCK_LOG__FORMAT=json
USER pluto
EXPOSE 8765
HEALTHCHECK --interval=5s --retries=20 CMD curl -fsS http://127.0.0.1:8765/health || exit 1
ENTRYPOINT ["/opt/pluto-duck/pluto-duck"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8765"]
