# syntax=docker/dockerfile:1
# One image for every process (api, worker, scheduler, grpc, migrate); the command picks the role.
# The base by version AND by digest (the multi-architecture index of Docker Hub's
# python:3.11.16-slim-bookworm): two builds start from the same bytes. Bump both deliberately
# (`docker buildx imagetools inspect python:3.11-slim-bookworm` gives the current digest).
ARG PYTHON_IMAGE=python:3.11.16-slim-bookworm@sha256:528257d48c1da0dcecc2e725d1ae34498d60c965f1241e39cd6a85a8859bdf84

# --- build: the locked runtime requirements, every file checked against its hash -----------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
# requirements.lock: every package, transitive ones included, pinned with its hashes (`make
# lock`). Wheels wherever there are any; the one sdist (crontab, for rq-scheduler) is pure
# Python: no compiler, so no apt package, is needed.
COPY requirements.lock .
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --require-hashes --prefer-binary --no-deps -r requirements.lock

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
# A fixed numeric id: USER by number lets Kubernetes' runAsNonRoot verify it (hadolint DL3066).
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# Only what runs (.dockerignore is a whitelist). Owned by root: the app user can read the code
# but not change it; byte code is compiled now, since nobody may write it later.
COPY . .
RUN python -m compileall -q /app \
    && chmod -R u=rwX,go=rX /app
USER 10001:10001
EXPOSE 8000 50051
# Every role's own liveness (healthcheck.py reads the role from the container's command).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "healthcheck.py"]
CMD ["gunicorn", "wsgi:app", "-c", "gunicorn.conf.py"]
