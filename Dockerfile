# One image for every hoithi service; the command chooses which (`hoithi serve submissions`).
#
# Built offline: pip inside a container cannot reach a registry here (nor on an air-gapped government network),
# so the wheels are built on the host first and installed with --no-index:
#   deploy/build-image.sh            (pip wheel -w build/wheelhouse . ; docker build -t hoithi:dev .)
# BASE is any Debian-like image with python3.11 + venv: python:3.11-slim where a registry is reachable, or
# the stand-in `../shared/ci/offline-images.sh python-base hoithi/python-base:3.11-bookworm` builds here.
ARG BASE=hoithi/python-base:3.11-bookworm

FROM ${BASE} AS install
COPY build/wheelhouse /wheelhouse
RUN python3 -m venv /opt/hoithi \
 && /opt/hoithi/bin/pip install --no-cache-dir --no-index --find-links /wheelhouse hoithi \
 && /opt/hoithi/bin/hoithi --help >/dev/null

FROM ${BASE}
COPY --from=install /opt/hoithi /opt/hoithi
# The seed editions `hoithi seed` loads (its default path is relative: deploy/seed/…, from /app).
COPY deploy/seed /app/deploy/seed
# (written directly: a minimal base may lack useradd)
RUN echo 'hoithi:x:10001:' >> /etc/group \
 && echo 'hoithi:x:10001:10001:hoithi:/app:/usr/sbin/nologin' >> /etc/passwd \
 && mkdir -p /data /clock /mail && chown hoithi:hoithi /data /clock /mail
ENV PATH=/opt/hoithi/bin:/usr/local/bin:/usr/bin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOITHI_DATA_DIR=/data \
    HOITHI_CAMPAIGN_HOST=0.0.0.0 HOITHI_SUBMISSIONS_HOST=0.0.0.0 \
    HOITHI_REWARDS_HOST=0.0.0.0 HOITHI_NOTIFY_HOST=0.0.0.0 \
    HOITHI_CAMPAIGN_PORT=8101 HOITHI_SUBMISSIONS_PORT=8102 HOITHI_REWARDS_PORT=8103 HOITHI_NOTIFY_PORT=8104
WORKDIR /app
# Everything it writes goes to /data (a volume or tmpfs) and /tmp: the root filesystem may be read-only.
VOLUME ["/data"]
USER 10001:10001
EXPOSE 8101 8102 8103 8104
# Readiness of whichever service this container runs (HOITHI_SERVICE, set by compose / Kubernetes).
COPY deploy/docker/healthcheck.py /opt/hoithi/healthcheck.py
HEALTHCHECK --interval=5s --timeout=10s --start-period=60s --retries=12 \
  CMD ["/usr/bin/python3", "-S", "-I", "/opt/hoithi/healthcheck.py"]
ENTRYPOINT ["hoithi"]
CMD ["--help"]
