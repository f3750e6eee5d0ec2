# driftsentinel sidecar image: `docker build -t driftsentinel .`
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# What gets copied is decided by .dockerignore (sources and pyproject, no venv/tests/caches).
COPY . .
# All dependencies ship manylinux wheels (confluent-kafka bundles librdkafka), so no
# compiler is needed; the source tree is not kept at run time.
RUN pip install . \
 && rm -rf /src

RUN useradd --create-home --uid 10001 --user-group driftsentinel
USER driftsentinel
WORKDIR /home/driftsentinel
# numba writes its compiled-kernel cache beside the module by default, and site-packages
# is not writable for this user.
ENV NUMBA_CACHE_DIR=/home/driftsentinel/.cache/numba

EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request, sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"]

ENTRYPOINT ["driftsentinel"]
CMD ["run", "--bootstrap-servers", "kafka:9092", "--input-topic", "features", "--alerts-topic", "drift-alerts", "--dlq-topic", "features-dlq", "--metrics-port", "8000"]
