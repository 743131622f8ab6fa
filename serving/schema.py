"""A model's input schema: its columns in order, each a number or a category, whether it may be
missing, and (for categories) the values seen in training and what an unseen one means.

Written into meta.json by `models import`, read by every replica to check requests before
onnxruntime sees them. Standard library only: the console reads it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    """What a column holds."""

    NUMBER = "number"
    CATEGORY = "category"


class Unknown(StrEnum):
    """What the model does with a category it was not trained on (its encoder's handle_unknown)."""

    IGNORE = "ignore"  # accepted (the encoder maps it to nothing) and counted by the monitor
    ERROR = "error"  # the encoder would fail: a 400 naming the column and the value


class Layout(StrEnum):
    """How the ONNX graph takes its inputs."""

    MATRIX = "matrix"  # one float tensor "X" of shape (rows, columns): all-numeric models
    COLUMNS = "columns"  # one (rows, 1) tensor per column, named after it, typed by its kind


class SchemaError(ValueError):
    """meta.json's input schema is malformed; the message names the field."""


@dataclass(frozen=True)
class Column:
    """One input column."""

    name: str
    kind: Kind = Kind.NUMBER
    nullable: bool = False  # the model was shown to accept a missing value here (parity-checked)
    categories: tuple[str, ...] | None = None  # seen in training; None: not known (no check)
    unknown: Unknown = Unknown.IGNORE

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.kind.value,
            "nullable": self.nullable,
        }
        if self.kind is Kind.CATEGORY:
            out["categories"] = list(self.categories) if self.categories is not None else None
            out["unknown"] = self.unknown.value
        return out


@dataclass(frozen=True)
class InputSchema:
    """The columns, in the order list-of-lists rows give them."""

    columns: tuple[Column, ...]
    layout: Layout = Layout.MATRIX

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def key(self) -> tuple[tuple[str, str], ...]:
        """The columns' names and kinds: two versions with the same key read a parsed batch
        the same way (what each accepts may still differ: see instances.check_forwarded)."""
        return tuple((c.name, c.kind.value) for c in self.columns)

    @property
    def numeric(self) -> bool:
        """Every column a number: rows may also come as plain lists of numbers."""
        return all(c.kind is Kind.NUMBER for c in self.columns)

    @classmethod
    def numbers(cls, names: list[str]) -> InputSchema:
        """Today's all-float schema (and that of every model imported before schemas existed)."""
        return cls(tuple(Column(n) for n in names), Layout.MATRIX)

    def to_json(self) -> dict[str, Any]:
        return {"layout": self.layout.value, "columns": [c.to_json() for c in self.columns]}

    @classmethod
    def from_meta(cls, schema: dict[str, Any], n_features: int) -> InputSchema:
        """From meta.json's "input"; a version written before columns existed is all numbers."""
        raw = schema.get("columns")
        if raw is None:
            names = schema.get("feature_names") or [f"f{j}" for j in range(n_features)]
            return cls.numbers([str(n) for n in names])
        if not isinstance(raw, list) or len(raw) != n_features:
            raise SchemaError(f"input.columns must list {n_features} columns")
        try:
            layout = Layout(schema.get("layout", "matrix"))
        except ValueError as exc:
            raise SchemaError(f"input.layout: {exc}") from None
        columns = []
        for j, doc in enumerate(raw):
            where = f"input.columns[{j}]"
            if not isinstance(doc, dict) or not isinstance(doc.get("name"), str):
                raise SchemaError(f"{where} needs a 'name'")
            try:
                kind = Kind(doc.get("type", "number"))
                unknown = Unknown(doc.get("unknown", "ignore"))
            except ValueError as exc:
                raise SchemaError(f"{where}: {exc}") from None
            cats = doc.get("categories")
            if cats is not None and not (
                isinstance(cats, list) and all(isinstance(c, str) for c in cats)
            ):
                raise SchemaError(f"{where}.categories must be a list of strings")
            columns.append(
                Column(
                    doc["name"],
                    kind,
                    bool(doc.get("nullable", False)),
                    tuple(cats) if cats is not None else None,
                    unknown,
                )
            )
        return cls(tuple(columns), layout)


def narrowed(old: InputSchema, new: InputSchema) -> list[str]:
    """What `new` refuses that `old` took: each a client that worked before would now get a
    400 for (an empty list: every request `old` answered, `new` takes too)."""
    before = {c.name: c for c in old.columns}
    after = {c.name: c for c in new.columns}
    out = [f"no column '{n}'" for n in before if n not in after]
    out += [f"a new column '{n}' is required" for n in after if n not in before]
    for name, was in before.items():
        now = after.get(name)
        if now is None:
            continue
        if now.kind is not was.kind:
            out.append(f"'{name}' is a {now.kind.value}, not a {was.kind.value}")
            continue
        if was.nullable and not now.nullable:
            out.append(f"'{name}' may not be null")
        if now.kind is Kind.CATEGORY and now.unknown is Unknown.ERROR:
            lost = sorted(set(was.categories or ()) - set(now.categories or ()))
            if was.unknown is Unknown.IGNORE:
                out.append(f"'{name}' refuses categories it was not trained on")
            elif lost:
                out.append(f"'{name}' refuses {', '.join(repr(c) for c in lost[:3])}")
    return out
