# The ML backend (`python run.py serve`) as an image, installed from requirements.lock with
# its hashes. Secrets (LOOP_LABEL_STUDIO_API_KEY, LOOP_BACKEND_PASSWORD, ZENML_STORE_API_KEY,
# cloud keys) come from the platform's secret store at run time: none is set here, and none is
# passed on the command line. Recipes per platform: cloud_config/deploy/.
#
#   docker build -t annotation-loop-backend .
FROM python:3.11.14-slim-bookworm

# The Makefile's uv; it checks every package of the lock against its hashes.
ARG UV_VERSION=0.13.9
ARG UID=10001

WORKDIR /app
RUN pip install --no-cache-dir --root-user-action=ignore "uv==${UV_VERSION}" \
    && groupadd --system --gid "${UID}" loop \
    && useradd --system --uid "${UID}" --gid loop --home-dir /home/loop --create-home loop

COPY requirements.lock ./
RUN uv pip install --system --no-cache --compile-bytecode --require-hashes -r requirements.lock

COPY . .
# The project itself, editable as in the Makefile: PROJECT_ROOT stays /app (run.py, configs/,
# and the ZenML repository folder .zen that serve keeps its active stack in).
RUN uv pip install --system --no-cache --compile-bytecode --no-deps -e . \
    && mkdir -p /app/.zen /var/lib/annotation-loop \
    && chown loop:loop /app/.zen /var/lib/annotation-loop

# Non-secret defaults only. The state folder (ZenML's client config, the backend's generated
# credentials, retraining logs) and the caches go to /var/lib/annotation-loop, the one folder
# (with /app/.zen and /tmp) that a read-only root filesystem needs writable.
ENV PYTHONUNBUFFERED=1 \
    ZENML_ANALYTICS_OPT_IN=false \
    LOOP_STATE_DIR=/var/lib/annotation-loop/state \
    XDG_CACHE_HOME=/var/lib/annotation-loop/cache \
    MPLCONFIGDIR=/var/lib/annotation-loop/cache/matplotlib

USER loop
EXPOSE 9090
# /health answers without authentication (it tells only that the backend is up). The backend
# starts listening after it has connected to ZenML and Label Studio, hence the start period.
HEALTHCHECK --interval=30s --timeout=5s --start-period=180s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9090/health', timeout=4)"]
# LOOP_BACKEND_URL (the URL Label Studio reaches the backend at) and LOOP_CLOUD come from the
# platform's environment; serve reads both.
CMD ["python", "run.py", "serve", "--host", "0.0.0.0", "--port", "9090"]
