# syntax=docker/dockerfile:1
# Headshot Studio, self-hosted. Build and run (README "Self-hosting with Docker"):
#   docker build -t headshot-studio .
#   docker run --gpus all -p 7860:7860 -v headshot-data:/data -v headshot-models:/models \
#     --tmpfs /tmp:rw,nosuid,nodev,size=4g -e HEADSHOT_MASTER_KEY="$(openssl rand -base64 32)" headshot-studio
# Nothing secret or personal is baked into a layer: code and pinned requirements only
# (no ADD; every COPY below names its source; .dockerignore is the second fence).
FROM python:3.11-slim-bookworm

# CUDA-capable torch: the same version as requirements.txt, from a CUDA wheel index, so
# `docker run --gpus all` uses the GPU (the NVIDIA container toolkit supplies the driver;
# the wheel brings its own CUDA runtime). CPU-only image: --build-arg
# TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu (a much smaller image).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128

# System libraries: none beyond the slim base. `ldd` over every compiled module of the
# pinned wheels (dlib-bin, opencv-python-headless, onnxruntime, pillow-heif, torch)
# needs only glibc, libstdc++, libgcc and zlib, all in python:3.11-slim.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

WORKDIR /app
COPY requirements.txt requirements-nodeps.txt ./
RUN python -m venv /opt/venv \
 && pip install --index-url "$TORCH_INDEX_URL" "$(grep -E '^torch==' requirements.txt)" \
 && pip install -r requirements.txt \
 && pip install --no-deps -r requirements-nodeps.txt

# The application code, owned by root and read-only to the app user.
COPY settings.py errors.py startup_checks.py app.py cli.py PRIVACY.md SECURITY.md ./
COPY faces/ faces/
COPY privacy/ privacy/
COPY pipeline/ pipeline/
COPY studio/ studio/
COPY web/ web/
COPY assets/ assets/
COPY docs/ docs/
COPY --chmod=0755 docker-entrypoint.sh ./

# Non-root user with uid 1000 (also what Hugging Face Docker Spaces run as). /data holds
# everything personal (encrypted blobs, database, keys, Gradio's temp files); /models
# caches downloaded base-model weights, which are not personal.
RUN useradd --uid 1000 --create-home --shell /usr/sbin/nologin studio \
 && mkdir -p /data /models \
 && chown 1000:1000 /data /models \
 && chmod 0700 /data

ENV HEADSHOT_DATA_DIR=/data \
    HF_HOME=/models \
    TMPDIR=/tmp \
    GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_SERVER_PORT=7860 \
    GRADIO_ANALYTICS_ENABLED=False \
    HF_HUB_DISABLE_TELEMETRY=1 \
    DO_NOT_TRACK=1 \
    HF_HUB_DISABLE_IMPLICIT_TOKEN=1

VOLUME ["/data", "/models"]
USER 1000
EXPOSE 7860

# /healthz is cheap (no model, no database write); python's urllib, so no curl in the image.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('GRADIO_SERVER_PORT', '7860'), timeout=4)" || exit 1

ENTRYPOINT ["/app/docker-entrypoint.sh"]
