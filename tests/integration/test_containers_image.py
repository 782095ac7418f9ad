"""The one image (deploy/build-image.sh): a non-root user, fine on a read-only root filesystem, a HEALTHCHECK,
and the service chosen by its command — ``hoithi serve X --help`` answers inside it for each service."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from shared.settings import SERVICES
from tests.support.servers import container_tier_skip_reason

IMAGE = os.environ.get("HOITHI_IMAGE", "hoithi:dev")


def _why_not() -> str:
    why = container_tier_skip_reason()
    if why:
        return why
    if subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True, check=False).returncode:
        return f"image {IMAGE} not built (deploy/build-image.sh)"
    return ""


pytestmark = pytest.mark.skipif(bool(_why_not()), reason=_why_not() or "-")


def _run(*args: str, entrypoint: str | None = None) -> subprocess.CompletedProcess[str]:
    cmd = ["docker", "run", "--rm", "--read-only", "--tmpfs", "/tmp", "--network", "none"]
    if entrypoint:
        cmd += ["--entrypoint", entrypoint]
    return subprocess.run([*cmd, IMAGE, *args], capture_output=True, text=True, timeout=120, check=False)


def test_the_image_runs_as_a_non_root_user_with_a_healthcheck() -> None:
    config = json.loads(
        subprocess.run(
            ["docker", "image", "inspect", "-f", "{{json .Config}}", IMAGE],
            capture_output=True, text=True, check=True,
        ).stdout
    )  # fmt: skip
    assert config["User"] and config["User"].split(":")[0] not in ("", "0", "root")
    assert config["Healthcheck"]["Test"][0] in ("CMD", "CMD-SHELL")
    ids = _run("-c", "id -u; id -g", entrypoint="/bin/sh")
    assert ids.returncode == 0, ids.stderr
    uid, gid = ids.stdout.split()
    assert uid != "0" and gid != "0"


@pytest.mark.parametrize("service", SERVICES)
def test_hoithi_serve_help_answers_inside_the_image_on_a_read_only_root(service: str) -> None:
    out = _run("serve", service, "--help")
    assert out.returncode == 0, out.stderr
    assert "Usage" in out.stdout and "serve" in out.stdout
