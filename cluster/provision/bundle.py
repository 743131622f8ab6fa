"""The code shipped to hosts: the `serving` package, without caches, and its sha256."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import serving
from cluster.transport.base import local_manifest


@dataclass(frozen=True)
class Bundle:
    """A clean copy of the package in a temp dir; `sha256` covers every file's path and bytes."""

    path: Path
    sha256: str


def build_bundle(workdir: Path) -> Bundle:
    source = Path(serving.__file__).resolve().parent
    target = workdir / "serving"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    manifest, _ = local_manifest(target)
    digest = hashlib.sha256(
        "".join(f"{k}\0{v}\n" for k, v in sorted(manifest.items())).encode()
    ).hexdigest()
    return Bundle(target, digest)


def temp_workdir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="mlops-bundle-")
