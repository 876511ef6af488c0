# helm, version-stamped the way helm's own Makefile does it (pyhelm3 parses `helm version`).
FROM golang:1.24 AS helm
RUN CGO_ENABLED=0 go install -trimpath \
      -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v3.19.5" \
      helm.sh/helm/v3/cmd/helm@v3.19.5

FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 SLIPWAY_HELM=/usr/local/bin/helm
COPY --from=helm /go/bin/helm /usr/local/bin/helm
COPY pyproject.toml ./
RUN pip install --no-cache-dir -e .
COPY . .
# Collected with the production storage (hashed names + manifest); throwaway build keys.
RUN SLIPWAY_PRODUCTION=1 DATABASE_URL=postgresql://build@localhost/none \
    SECRET_KEY=build-only-$(python -c "import secrets; print(secrets.token_hex(32))") \
    SLIPWAY_ENCRYPTION_KEYS=$(python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())") \
    python manage.py collectstatic --no-input
EXPOSE 8000
CMD ["gunicorn", "portal.wsgi", "-b", "0.0.0.0:8000", "-w", "3"]
