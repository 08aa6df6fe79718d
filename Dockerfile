# syntax=docker/dockerfile:1
# The register's production image: Python 3.11 slim, exact dependency versions, a non-root user.
# Build and run it with docker-compose.yml (README: "Running in production with Docker").
#
# Pinned by version tag; to pin the exact bytes, append the digest your registry reports:
#   docker build --build-arg PYTHON_IMAGE=python:3.11.13-slim-bookworm@sha256:<digest> .
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm
FROM ${PYTHON_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/register \
    PATH=/opt/register/bin:$PATH \
    PYTHONPATH=/app

RUN groupadd --system --gid 10001 register \
 && useradd --system --uid 10001 --gid register --home-dir /var/lib/register --create-home \
            --shell /usr/sbin/nologin register

# Dependencies first (a layer that changes only with the lock). --no-deps: exactly what the lock says,
# nothing resolved at build time; `pip check` fails the build if the lock misses a dependency.
# The lock names the regulator's verifier (register_verifier: the Merkle tree, proofs and signed notes the
# register imports) by its repository path, ./clients/register_verifier, so it comes from this source tree and
# never from an index: pip runs in /tmp, where that path is copied.
COPY requirements.lock /tmp/requirements.lock
COPY clients/register_verifier /tmp/clients/register_verifier
RUN python -m venv /opt/register \
 && cd /tmp \
 && pip install --no-deps -r /tmp/requirements.lock \
 && pip check \
 && rm -r /tmp/requirements.lock /tmp/clients

# The source tree as it is in git: `register db upgrade` finds alembic.ini and migrations/ beside the
# package, so the package runs from /app rather than being installed into site-packages.
WORKDIR /app
COPY alembic.ini ./
COPY migrations ./migrations
COPY register ./register
RUN python -m compileall -q register migrations && python -c "import register.main"

USER 10001:10001
ENV REGISTER_ENV=prod \
    REGISTER_DATA_DIR=/var/lib/register
EXPOSE 8000

# /healthz answers 200 only while the database does (503 otherwise); urlopen raises on anything but 2xx.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]

# `register <command>`: the default serves, one server process per core the container may use (its CPU
# set; with a CPU quota instead, e.g. --cpus 2, set REGISTER_WORKERS); `docker compose run --rm migrate`
# runs `register db upgrade`.
ENTRYPOINT ["python", "-m", "register.cli"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
