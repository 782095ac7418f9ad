#!/usr/bin/env bash
# Builds, without an image registry, every image the container tests and deploy/compose.yaml use:
#   nats:2.15, postgres:15 and the Python base (../shared/ci/offline-images.sh, where it exists), then
#   hoithi:dev from the Dockerfile, installed --no-index from a wheelhouse built here on the host.
# Where a registry is reachable, `docker pull nats:2.15 postgres:15 python:3.11-slim` replaces the first step
# (then: BASE=python:3.11-slim deploy/build-image.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
BASE=${BASE:-hoithi/python-base:3.11-bookworm}
IMAGE=${HOITHI_IMAGE:-hoithi:dev}
offline=${OFFLINE_IMAGES:-../shared/ci/offline-images.sh}

if [ -f "$offline" ]; then
    exec 9>/tmp/hoithi-offline-images.lock && flock 9  # offline-images.sh must not run twice at once
    for spec in "nats nats:2.15" "postgres postgres:15" "python-base $BASE"; do
        set -- $spec
        docker image inspect "$2" >/dev/null 2>&1 || PATH="$(pwd)/.venv/bin:$PATH" bash "$offline" "$1" "$2"
    done
fi

# The wheelhouse: the project and every dependency as wheels (pip talks to the registry here, on the host).
rm -rf build/lib build/bdist* build/wheelhouse/hoithi-*.whl
mkdir -p build/wheelhouse
"$PY" -m pip wheel -q --disable-pip-version-check -w build/wheelhouse --find-links build/wheelhouse .
docker build -q --build-arg BASE="$BASE" -t "$IMAGE" . >/dev/null
echo "built $IMAGE on $BASE ($(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
