# qa: the HTTP API over the shipped corpus, with its index built into the image.
#
#   docker build -t qa .
#   docker run --rm -p 8000:8000 -e QA_API_KEY=change-me qa
#
# The default model (use-m3) ships inside its wheel: nothing is downloaded at run time.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    QA_CORPUS=/app/corpus \
    QA_INDEX=/app/index

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin qa

# The package and its default dependencies only: torch is in the [st] extra, not installed here.
COPY pyproject.toml README.md /src/
COPY qa /src/qa
RUN pip install /src && rm -rf /src

WORKDIR /app
COPY corpus ./corpus
# The index belongs to the user the server runs as, so POST /index can rewrite it.
RUN mkdir index && chown qa:qa index
USER qa
RUN qa index

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]
CMD ["qa", "serve", "--host", "0.0.0.0", "--port", "8000"]
