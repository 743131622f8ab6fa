"""The model store: NAME/VERSION directories of immutable, checksummed ONNX versions.

Beside them, on the operator's machine only, NAME/.sources/VERSION.skops keeps the
scikit-learn estimator each version was converted from (saved with skops, never a pickle):
what `models update` continues training from; NAME/.sources/VERSION.train.json, when known,
the rows it was fitted on (what `models update --method batch` refits on, with the new
records). Hosts get the version directories only.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cluster.errors import UsageError
from cluster.models.errors import ModelError
from serving.artifacts import (
    HOLDOUT_FILE,
    META_FILE,
    MODEL_FILE,
    ArtifactError,
    ModelMeta,
    read_meta,
    verify,
)

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
SOURCES = ".sources"  # NAME/.sources/VERSION.skops: never inside a version, never shipped
KEPT = {"source": ".skops", "training": ".train.json"}  # what .sources holds per version


class InvalidModelName(ModelError, UsageError):
    """A model name or version that is not a plain directory name (it could leave the store)."""


def check_name(text: str, what: str) -> str:
    """`text` if it is safe as one path component of the store, else InvalidModelName."""
    if not NAME_RE.match(text) or ".." in text:
        raise InvalidModelName(
            f"invalid {what} {text!r}: use letters, digits, '.', '_' and '-', starting with a "
            "letter or digit, without '..'"
        )
    return text


@dataclass(frozen=True)
class StoredVersion:
    """A version in the store and where it lives."""

    name: str
    version: str
    path: Path
    meta: ModelMeta


@dataclass(frozen=True)
class VersionListing:
    """One row of the store's listing; `invalid` says why a version cannot be used.

    `verified` is None when the sha256 was not checked (listing reads metadata only), True
    when it matched, and False never: a mismatch is `invalid`.
    """

    name: str
    version: str
    task: str = ""
    features: int = 0
    estimator: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    created: str | None = None
    sha256: str = ""
    verified: bool | None = None
    invalid: str | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.invalid is not None:
            return {"name": self.name, "version": self.version, "invalid": self.invalid}
        return {k: v for k, v in self.__dict__.items() if k != "invalid"}


class ModelStore:
    """Versions are numbered 1, 2, 3...; a version is never rewritten once written."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")
        )

    def versions(self, name: str) -> list[str]:
        base = self.root / check_name(name, "model name")
        if not base.is_dir():
            return []
        found = [p.name for p in base.iterdir() if p.is_dir() and p.name.isdigit()]
        return sorted(found, key=int)

    def get(self, name: str, version: str | None = None, *, check: bool = True) -> StoredVersion:
        """A version (the latest when none is named), its sha256 verified unless check=False."""
        versions = self.versions(name)
        if not versions:
            known = ", ".join(self.names()) or "none yet (try: mlops-tui models example)"
            raise ModelError(f"no model named '{name}' in {self.root} (models: {known})")
        version = check_name(version, "version") if version else versions[-1]
        if version not in versions:
            raise ModelError(
                f"{name} has no version {version} in {self.root} (versions: {', '.join(versions)})"
            )
        path = self.root / name / version
        try:
            meta = verify(path) if check else read_meta(path)
        except ArtifactError as exc:
            raise ModelError(str(exc)) from None
        return StoredVersion(name, version, path, meta)

    def listing(self, *, check: bool = False) -> list[VersionListing]:
        """Every version of every model; one that cannot be read is listed as invalid, never
        hides the rest. With `check`, each version's sha256 is verified (it reads every file)."""
        rows: list[VersionListing] = []
        for name in self.names():
            try:
                versions = self.versions(name)
            except ModelError as exc:  # a directory whose name is not a model name
                rows.append(VersionListing(name, "", invalid=str(exc)))
                continue
            for version in versions:
                try:
                    found = self.get(name, version, check=check)
                except ModelError as exc:
                    rows.append(VersionListing(name, version, invalid=str(exc)))
                    continue
                rows.append(_listing(found, verified=True if check else None))
        return rows

    def find_identical(self, name: str, sha256: str) -> str | None:
        for version in self.versions(name):
            try:
                if read_meta(self.root / name / version).sha256 == sha256:
                    return version
            except ArtifactError:
                continue
        return None

    def source(self, name: str, version: str) -> Path | None:
        """The skops file of the estimator `version` was converted from, if it was kept."""
        return self._kept(name, version, "source")

    def training(self, name: str, version: str) -> Path | None:
        """The rows `version` was fitted on (JSON: X and y, as holdout.json), if known."""
        return self._kept(name, version, "training")

    def _kept(self, name: str, version: str, what: str) -> Path | None:
        base = self.root / check_name(name, "model name") / SOURCES
        path = base / f"{check_name(version, 'version')}{KEPT[what]}"
        return path if path.is_file() else None

    def add(
        self,
        name: str,
        onnx_bytes: bytes,
        meta: dict[str, Any],
        holdout: dict[str, Any] | None,
        source: bytes | None = None,
        training: dict[str, Any] | None = None,
    ) -> str:
        """Write a new version atomically (temp dir, then rename) and return its number;
        `source` (the estimator as skops bytes) and `training` (its rows) go to
        NAME/.sources/ once the version has its number (a version without them can be
        served, not updated)."""
        base = self.root / check_name(name, "model name")
        base.mkdir(parents=True, exist_ok=True)
        token = secrets.token_hex(4)
        tmp = base / f".incoming-{token}"
        tmp.mkdir()
        staged: dict[str, Path] = {}
        for what, data in (("source", source), ("training", training)):
            if data is None:
                continue
            (base / SOURCES).mkdir(exist_ok=True)
            staged[what] = base / SOURCES / f".incoming-{token}{KEPT[what]}"
            if isinstance(data, bytes):
                staged[what].write_bytes(data)
            else:
                with staged[what].open("w") as fh:  # in chunks: no string of the whole file
                    json.dump(data, fh)
        try:
            (tmp / MODEL_FILE).write_bytes(onnx_bytes)
            if holdout is not None:
                (tmp / HOLDOUT_FILE).write_text(json.dumps(holdout))
            for _ in range(100):
                version = str(int(self.versions(name)[-1]) + 1 if self.versions(name) else 1)
                (tmp / META_FILE).write_text(
                    json.dumps({**meta, "name": name, "version": version}, indent=2)
                )
                try:
                    os.rename(tmp, base / version)  # fails if another import took the number
                except OSError:
                    continue
                for what, path in staged.items():
                    os.replace(path, base / SOURCES / f"{version}{KEPT[what]}")
                return version
            raise ModelError(f"could not allocate a version number under {base}")
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)
            for path in staged.values():
                path.unlink(missing_ok=True)


def _listing(found: StoredVersion, verified: bool | None) -> VersionListing:
    raw = found.meta.raw
    source: dict[str, Any] = raw["source"] if isinstance(raw.get("source"), dict) else {}
    metrics: dict[str, Any] = raw["metrics"] if isinstance(raw.get("metrics"), dict) else {}
    return VersionListing(
        found.name,
        found.version,
        task=found.meta.task,
        features=found.meta.n_features,
        estimator=str(source["estimator"]) if source.get("estimator") else None,
        metrics={str(k): float(v) for k, v in metrics.items() if isinstance(v, int | float)},
        created=str(raw["created"]) if raw.get("created") else None,
        sha256=found.meta.sha256,
        verified=verified,
    )
