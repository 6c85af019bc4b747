# syntax=docker/dockerfile:1
# Production image: needs DATABASE_URL (any PostgreSQL >= 14); runs migrations, then the service.
#   docker build -t data-items .
#   docker run -e DATABASE_URL=postgresql+asyncpg://user:pass@db:5432/items -p 8000:8000 data-items

FROM python:3.11-slim AS build
WORKDIR /srv/app
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY pyproject.toml README.md ./
COPY app ./app
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-compile .

FROM python:3.11-slim AS runtime
RUN useradd --system --uid 10001 --home-dir /srv/app --shell /usr/sbin/nologin dataitems
WORKDIR /srv/app
COPY --from=build /opt/venv /opt/venv
COPY --chown=dataitems:dataitems app ./app
COPY --chown=dataitems:dataitems migrations ./migrations
COPY --chown=dataitems:dataitems alembic.ini ./
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    LOG_FORMAT=json \
    MIGRATE_ON_START=false \
    FORWARDED_ALLOW_IPS=*
USER dataitems
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\", \"8000\")}/healthz', timeout=2)"]
# Migrations are an explicit step before the server (several replicas take turns on a lock).
CMD ["sh", "-c", ": \"${DATABASE_URL:?set DATABASE_URL to a PostgreSQL server}\" && python -m app migrate && exec python -m app serve"]
