"""serving.handles.on_loop: a handle's router bound once, on the caller's loop."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from serving.handles import on_loop


class Handle:
    """Stands in for a DeploymentHandle: records how it was set up."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.is_initialized = False
        self.options: dict[str, Any] | None = None
        self._fail = fail

    def _init(self, **options: Any) -> None:
        if self._fail is not None:
            raise self._fail
        self.options = options
        self.is_initialized = True


def test_a_new_handle_routes_on_the_callers_loop() -> None:
    handle = Handle()
    assert on_loop(handle) is handle
    assert handle.options == {"_run_router_in_separate_loop": False}


def test_a_handle_already_set_up_is_left_alone() -> None:
    handle = Handle()
    handle.is_initialized = True
    on_loop(handle)
    assert handle.options is None


def test_a_stand_in_without_the_attribute_is_returned_as_it_is() -> None:
    stand_in = object()
    assert on_loop(stand_in) is stand_in


class Lines(logging.Handler):
    """Collects what a logger emits: once Ray has set up "ray.serve" in this process it no
    longer propagates to the root logger, so pytest's caplog would see nothing."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.mark.parametrize("error", [TypeError("unexpected keyword"), RuntimeError("no loop")])
def test_a_ray_that_refuses_the_option_keeps_its_router_and_says_so(error: Exception) -> None:
    handle = Handle(fail=error)
    lines = Lines()
    logger = logging.getLogger("ray.serve")
    logger.addHandler(lines)
    try:
        assert on_loop(handle) is handle
    finally:
        logger.removeHandler(lines)
    assert not handle.is_initialized  # Serve sets it up its own way on the first call
    assert lines.lines == [f"deployment handle keeps its router thread: {error}"]
