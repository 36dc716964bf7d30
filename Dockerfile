# Zato in a container: one server (two gevent workers) on an embedded SQLite ODB by default.
#   docker build -t zato .
#   docker run -p 17010:17010 -p 8183:8183 -v zato-env:/opt/zato/env zato
# The first start creates the environment and prints the admin and web-admin passwords once (docker logs).
# For a cluster, pass quickstart options through ZATO_QUICKSTART_ARGS, for example
#   -e ZATO_QUICKSTART_ARGS="--odb postgresql --odb-host db --odb-user zato --odb-db-name zato"
#   -e ZATO_ODB_PASSWORD=...
FROM debian:bookworm-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-dev gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --system --create-home --home-dir /opt/zato --shell /usr/sbin/nologin zato
WORKDIR /opt/zato/code
COPY --chown=zato:zato . .
USER zato
RUN scripts/setup.sh

ENV PATH=/opt/zato/code/.venv/bin:$PATH \
    ZATO_ENV=/opt/zato/env
VOLUME /opt/zato/env
EXPOSE 17010 8183
HEALTHCHECK --interval=10s --timeout=3s CMD python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:17010/zato/ping', timeout=2)"
ENTRYPOINT ["scripts/docker-entrypoint.sh"]
