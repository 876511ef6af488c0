# syntax=docker/dockerfile:1
# Slipway's image: helm built and version-stamped the way helm's Makefile does it
# (pyhelm3 parses `helm version`), dependencies in a virtualenv, a non-root runtime.

FROM golang:1.24-bookworm AS helm
RUN CGO_ENABLED=0 go install -trimpath \
      -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v3.19.5" \
      helm.sh/helm/v3/cmd/helm@v3.19.5

FROM python:3.11-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libldap-dev libsasl2-dev \
 && rm -rf /var/lib/apt/lists/*
ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /app
COPY pyproject.toml ./
RUN pip install --no-cache-dir .
COPY . .
# Static files collected with the production (hashed, manifest) storage; throwaway keys.
RUN SLIPWAY_PRODUCTION=1 DATABASE_URL=postgresql://build@localhost/none \
    SECRET_KEY=build-only-$(python -c "import secrets; print(secrets.token_hex(32))") \
    SLIPWAY_ENCRYPTION_KEYS=$(python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())") \
    SLIPWAY_AUDIT_KEYS=build-only-$(python -c "import secrets; print(secrets.token_hex(32))") \
    python manage.py collectstatic --no-input

FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends libldap-2.5-0 libsasl2-2 git \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 slipway \
 && useradd --uid 10001 --gid slipway --home-dir /app --no-create-home slipway
ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    SLIPWAY_HELM=/usr/local/bin/helm PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus
COPY --from=helm /go/bin/helm /usr/local/bin/helm
COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=slipway:slipway /app /app
WORKDIR /app
USER slipway
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request, sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]
CMD ["gunicorn", "portal.asgi:application", "-k", "uvicorn_worker.UvicornWorker", "-b", "0.0.0.0:8000", "-w", "3", "-c", "portal/gunicorn_conf.py"]
