"""The on-disk layout of a model version, shared by the operator's store and the hosts.

    NAME/VERSION/model.onnx   the ONNX graph (the only thing a host ever loads)
    NAME/VERSION/meta.json    sha256, input schema, task, classes, metrics, reference histograms
    NAME/VERSION/holdout.json a small labelled sample for pre-promotion checks

Hosts verify the sha256 before loading and never unpickle anything. Standard library only,
so the console can import this without numpy, onnxruntime or Ray.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serving.schema import InputSchema, SchemaError

MODEL_FILE = "model.onnx"
META_FILE = "meta.json"
HOLDOUT_FILE = "holdout.json"
FORMAT = 1


class ArtifactError(Exception):
    """A model version on disk is missing, malformed or not the bytes it claims to be."""


@dataclass(frozen=True)
class ModelMeta:
    """What meta.json says about one model version."""

    name: str
    version: str
    sha256: str
    task: str  # "classifier" | "regressor"
    n_features: int
    feature_names: tuple[str, ...] | None
    classes: tuple[Any, ...] | None
    raw: dict[str, Any]
    schema: InputSchema

    @property
    def is_classifier(self) -> bool:
        return self.task == "classifier"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_meta(version_dir: Path) -> ModelMeta:
    """Parse meta.json, naming the file and the field in every error."""
    path = version_dir / META_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"{path}: missing (is {version_dir} a model version?)") from None
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: unreadable: {exc}") from None
    if not isinstance(raw, dict):
        raise ArtifactError(f"{path}: expected a JSON object")
    try:
        task = raw["task"]
        if task not in ("classifier", "regressor"):
            raise ArtifactError(f"{path}: task must be classifier or regressor, got {task!r}")
        schema = raw["input"]
        n_features = int(schema["n_features"])
        names = schema.get("feature_names")
        classes = raw.get("classes")
        return ModelMeta(
            name=str(raw["name"]),
            version=str(raw["version"]),
            sha256=str(raw["sha256"]),
            task=task,
            n_features=n_features,
            feature_names=tuple(names) if names else None,
            classes=tuple(classes) if classes is not None else None,
            raw=raw,
            schema=InputSchema.from_meta(schema, n_features),
        )
    except SchemaError as exc:
        raise ArtifactError(f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{path}: missing or invalid field {exc}") from None


def verify(version_dir: Path) -> ModelMeta:
    """meta.json, after checking model.onnx has exactly the bytes meta.json names."""
    meta = read_meta(version_dir)
    model = version_dir / MODEL_FILE
    if not model.is_file():
        raise ArtifactError(f"{model}: missing")
    actual = sha256_file(model)
    if actual != meta.sha256:
        raise ArtifactError(
            f"{model}: sha256 is {actual[:12]}..., meta.json says {meta.sha256[:12]}...: "
            "the file was corrupted or tampered with; refusing to load it"
        )
    return meta
