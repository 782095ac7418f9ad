"""Editions other than the demo's, written in the documented format as another agency would write them."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from tests.support.system import SEED

# The 2023 edition's parts under this agency's own ids (none equals a catalogue kind form).
OWN_PART_IDS = {
    "initiative": "sang-kien",
    "selection": "xet-chon",
    "experience": "trai-nghiem-dvc",
    "online90": "chien-dich-90-ngay",
}


def edition_with_own_part_ids(rewards: dict[str, Any]) -> dict[str, Any]:
    """The 2023 edition document with the parts renamed (``OWN_PART_IDS``) and ``rewards`` as given."""
    doc = yaml.safe_load((SEED / "edition.yaml").read_text(encoding="utf-8"))
    for part in doc["parts"]:
        part["id"] = OWN_PART_IDS[part["id"]]
        if "of" in part:
            part["of"] = OWN_PART_IDS[part["of"]]
    doc["rewards"] = rewards
    return doc


def seed_dir(target: Path, edition: dict[str, Any]) -> Path:
    """A seed folder: the 2023 directory and ``edition``."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(SEED / "directory.yaml", target / "directory.yaml")
    (target / "edition.yaml").write_text(yaml.safe_dump(edition, allow_unicode=True), encoding="utf-8")
    return target
