# syntax=docker/dockerfile:1
# One image for every process (api, worker, scheduler, grpc, migrate); the command picks the role.
# Base images by exact version: the ones the suite runs against here (bump them deliberately).
ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm

# --- build: wheels for the pinned runtime requirements --------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY requirements.txt .
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install -r requirements.txt

# --- runtime: the venv and the code, owned by root and read-only to the app user --------
FROM ${PYTHON_IMAGE} AS runtime
# FLASK_SKIP_DOTENV: no `flask` command reads a .env here (there is none: .dockerignore).
# PROMETHEUS_MULTIPROC_DIR is left unset: gunicorn.conf.py and the gRPC parent (several
# processes) make their own under /tmp; the worker and gRPC processes serve theirs on METRICS_PORT.
ENV PATH="/opt/venv/bin:$PATH" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FLASK_SKIP_DOTENV=1 \
    APP_ENV=production \
    LOG_FORMAT=json \
    PORT=8000 \
    GRPC_PORT=50051
RUN groupadd --system app \
    && useradd --system --gid app --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# Only what runs (.dockerignore is a whitelist). Owned by root: the app user can read the code
# but not change it; byte code is compiled now, since nobody may write it later.
COPY . .
RUN python -m compileall -q /app \
    && chmod -R u=rwX,go=rX /app
USER app
EXPOSE 8000 50051
# Liveness of the HTTP API; the compose file gives the other roles their own checks.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8000'), timeout=2)" || exit 1
CMD ["gunicorn", "wsgi:app", "-c", "gunicorn.conf.py"]
