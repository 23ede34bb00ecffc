# syntax=docker/dockerfile:1
# hatbot images. Targets:
#   runtime (default): the bot service; code and the serving venv only, no corpus
#                      or model (the model comes from a volume at /models).
#   trainer:           also the `train` dependency group and WordNet, for
#                      `hatbot pipeline` (docker-compose.yml runs it once to fill
#                      the `models` volume).
# Build: docker build -t hatbot .            docker build --target trainer -t hatbot-trainer .

# One pinned base for every stage: the venv's interpreter symlinks point into it.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS build

# Poetry pinned to the version that wrote poetry.lock.
ARG POETRY_VERSION=2.5.1
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    POETRY_NO_INTERACTION=1 \
    POETRY_VIRTUALENVS_IN_PROJECT=true \
    POETRY_CACHE_DIR=/tmp/poetry-cache \
    PYTHONDONTWRITEBYTECODE=1

RUN pip install "poetry==${POETRY_VERSION}"

WORKDIR /app
# Dependencies first, so code changes do not rebuild the venv.
COPY pyproject.toml poetry.lock README.md ./
RUN poetry install --only main --no-root \
    && rm -rf "${POETRY_CACHE_DIR}"
# Then the project itself: an editable install whose path (/app/src) is the same
# in the runtime stage, which gives the `hatbot` console script.
COPY src ./src
RUN poetry install --only main \
    && rm -rf "${POETRY_CACHE_DIR}"

# ---------------------------------------------------------------------------
FROM build AS trainer

# g++ compiles fastText (no wheel for this platform); WordNet 3.0 feeds the host's
# rules, which the pipeline precomputes into the model artifact.
# Versions come from the pinned bookworm base; pinning Debian revisions breaks
# builds at every security update.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends g++ wordnet-base wordnet-sense-index \
    && rm -rf /var/lib/apt/lists/*

RUN poetry install --only main,train \
    && rm -rf "${POETRY_CACHE_DIR}"

# Same fixed UID as the runtime, so both can write and read the `models` volume.
# /models is created owned by that user: Docker copies the ownership into an
# empty named volume on first mount.
RUN groupadd --gid 10001 hatbot \
    && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/hatbot --shell /usr/sbin/nologin hatbot \
    && install -d -o 10001 -g 10001 /models /work

ENV PATH=/app/.venv/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    HOME=/home/hatbot \
    HATBOT_MODEL_STORE=/models
# Downloads, MLflow runs and NLTK's WordNet copy land in the working folder and $HOME.
WORKDIR /work
USER 10001:10001
CMD ["hatbot", "pipeline", "--help"]

# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="hatbot" \
      org.opencontainers.image.description="A bot for The Hat word game (FastAPI)"

RUN groupadd --gid 10001 hatbot \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin hatbot \
    && install -d -o 10001 -g 10001 /models

COPY --from=build /app/.venv /app/.venv
COPY --from=build /app/src /app/src

ENV PATH=/app/.venv/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HATBOT_MODEL_STORE=/models \
    HATBOT_HOST=0.0.0.0
WORKDIR /app
USER 10001:10001

# The service listens on $HATBOT_PORT, else $PORT (PaaS hosts set it), else 8000.
EXPOSE 8000
# No curl in the image: the standard library asks /readyz (200 once a model is
# loaded and warmed up; urlopen raises on 503, so the check fails).
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('HATBOT_PORT') or os.environ.get('PORT') or '8000'; urllib.request.urlopen(f'http://127.0.0.1:{port}/readyz', timeout=2)"]

CMD ["hatbot", "serve"]
