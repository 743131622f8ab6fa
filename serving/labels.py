"""Ground-truth labels, checked against the model they score: a classifier's label must be one
of its classes, a regressor's a finite number. Anything else would make the metrics lie (0.7
silently becoming class 0) or fail (NaN, "cat" among integers) long after the request.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


class LabelError(ValueError):
    """A label the model cannot be scored against; the message says why."""


class LabelChecker:
    """Maps an incoming label to the model's own class (or a float), or raises LabelError.

    A label matches a class only exactly: the same number (1 and 1.0 for class 1), or the
    class written as the model writes it ("1" for class 1, "setosa" for "setosa"). Anything
    a lenient parser would also take (" 1", "1e0", "+1", Arabic-Indic digits) is refused: labels feed the
    accuracy gates, and a label that means something else to us than to the client is a way
    to move them."""

    def __init__(self, task: str, classes: Sequence[Any] | None) -> None:
        self.task = task
        self.classes = list(classes) if classes is not None else None
        self._numbers: dict[float, Any] = {}
        self._texts: dict[str, Any] = {}
        for c in self.classes or ():
            if isinstance(c, str):
                self._texts.setdefault(c, c)
            elif isinstance(c, int | float) and not isinstance(c, bool):
                self._numbers.setdefault(float(c), c)
                self._texts.setdefault(str(c), c)

    def check(self, label: Any) -> Any:
        """The label as the model knows it: 1, 1.0 and "1" become class 1; 0.7 is refused."""
        if isinstance(label, bool) or not isinstance(label, str | int | float):
            raise LabelError(f"label {_show(label)} must be a number or a string")
        if self.task == "regressor":
            return _finite(label)
        if self.classes is None:  # classes unknown: anything finite is taken as it is
            if isinstance(label, float) and not math.isfinite(label):
                raise LabelError(f"label {_show(label)} is not a finite number")
            return label
        if isinstance(label, str):
            found = self._texts.get(label)
        else:
            number = _number(label)
            found = self._numbers.get(number) if number is not None else None
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


def _number(value: int | float) -> float | None:
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _show(value: Any) -> str:
    text = repr(value) if not isinstance(value, float) or math.isfinite(value) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."
