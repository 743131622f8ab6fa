"""Ground-truth labels, checked against the model they score: a classifier's label must be one
of its classes, a regressor's a finite number. Anything else would make the metrics lie (0.7
silently becoming class 0) or fail (NaN, "cat" among integers) long after the request.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Any


class LabelError(ValueError):
    """A label the model cannot be scored against; the message says why."""


class LabelChecker:
    """Maps an incoming label to the model's own class (or a float), or raises LabelError."""

    def __init__(self, task: str, classes: Sequence[Any] | None) -> None:
        self.task = task
        self.classes = list(classes) if classes is not None else None
        self._exact: dict[tuple[type, Hashable], Any] = {}
        self._by_value: dict[Hashable, Any] = {}
        for c in self.classes or ():
            self._exact.setdefault((type(c), c), c)
            key = _value_key(c)
            if key is not None:
                self._by_value.setdefault(key, c)

    def check(self, label: Any) -> Any:
        """The label as the model knows it: '1' and 1.0 both become class 1, 0.7 is refused."""
        if isinstance(label, bool) or not isinstance(label, str | int | float):
            raise LabelError(f"label {_show(label)} must be a number or a string")
        if self.task == "regressor":
            return _finite(label)
        if self.classes is None:  # classes unknown: anything finite is taken as it is
            if isinstance(label, float) and not math.isfinite(label):
                raise LabelError(f"label {_show(label)} is not a finite number")
            return label
        found = self._exact.get((type(label), label))
        if found is None:
            key = _value_key(label)
            found = self._by_value.get(key) if key is not None else None
        if found is None:
            raise LabelError(
                f"label {_show(label)} is not one of the model's classes {_show(self.classes)}"
            )
        return found


def _finite(label: Any) -> float:
    if isinstance(label, str):
        raise LabelError(f"label {_show(label)} is not a number (the model is a regressor)")
    try:
        value = float(label)
    except OverflowError:
        raise LabelError(
            f"label {_show(label)} is out of range (the model is a regressor)"
        ) from None
    if not math.isfinite(value):
        raise LabelError(f"label {_show(label)} is not a finite number (the model is a regressor)")
    return value


def _value_key(value: Any) -> Hashable | None:
    """Numbers (and numeric strings) by value, other strings as they are."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return ("s", value)
        return ("n", number) if math.isfinite(number) else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:
            return None
        return ("n", number) if math.isfinite(number) else None
    return None


def _show(value: Any) -> str:
    text = repr(value) if not isinstance(value, float) or math.isfinite(value) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."
