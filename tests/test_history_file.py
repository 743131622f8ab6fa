"""The history file: appends under a lock never interleave, a torn last line is ended and
reported, and a line that is not an object is named instead of crashing the reader."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from cluster.rollout.history import History, history_problems, read_history
from console.cli import main


def _append_many(path: str, who: int) -> None:
    history = History(Path(path), swap_id=f"w{who}")
    for i in range(200):
        history.append("step", app="cancer", detail="x" * 3000, i=i)


def test_two_writers_never_interleave_their_lines(tmp_path: Path) -> None:
    path = tmp_path / "inv.history.jsonl"
    # Two processes, lines of 3 kB (beyond what one unlocked write keeps whole for sure).
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(str(path), w)) for w in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    entries = read_history(path)
    assert len(entries) == 400 and history_problems(path) == []
    for swap in ("w1", "w2"):
        assert [e["i"] for e in entries if e["swap"] == swap] == list(range(200))


def test_a_torn_last_line_is_reported_and_the_next_line_is_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inventory = tmp_path / "inv.yaml"
    inventory.write_text("hosts:\n  a: 127.0.0.11\n")
    path = tmp_path / "inv.history.jsonl"
    history = History(path)
    history.append("swap_started", app="cancer", to="2")
    with path.open("a") as fh:
        fh.write('{"at": "2026-11-27T10:00:00Z", "kind": "st')  # the crash, mid-line
    assert history_problems(path) == [f"{path}:2: a torn last line (a write cut short), skipped"]
    history.append("swap_finished", app="cancer", outcome="promoted")
    assert [e["kind"] for e in read_history(path)] == ["swap_started", "swap_finished"]
    assert history_problems(path) == [f"{path}:2: not a JSON object, skipped"]
    with path.open("a") as fh:
        fh.write("[1, 2]\n")
    assert main(["history", "-i", str(inventory), "--json"]) == 0
    out, err = capsys.readouterr()
    assert [e["kind"] for e in json.loads(out)] == ["swap_started", "swap_finished"]
    assert f"{path}:4: not a JSON object, skipped" in err
    assert "Traceback" not in err


def test_a_swap_whose_process_was_killed_is_closed_as_interrupted(tmp_path: Path) -> None:
    """A swap_started without its swap_finished (SIGKILL): the next operation on the app,
    holding its lease, ends it as interrupted, once; other apps' swaps are left alone."""
    from cluster.rollout.history import close_unfinished

    path = tmp_path / "inv.history.jsonl"
    History(path, "aaaa").append("swap_started", app="cancer", to="2")
    History(path, "aaaa").append("step", app="cancer", phase="shift", detail="10%")
    History(path, "bbbb").append("swap_started", app="other", to="5")
    History(path, "cccc").append("swap_started", app="cancer", to="3")
    History(path, "cccc").append("swap_finished", app="cancer", outcome="promoted")
    [said] = close_unfinished(path, "cancer", "rollback cancer")
    assert "the swap to 2 started at" in said and "found by `rollback cancer`" in said
    last = read_history(path, "cancer")[-1]
    assert last["kind"] == "swap_finished" and last["swap"] == "aaaa"
    assert last["outcome"] == "interrupted" and last["found_by"] == "rollback cancer"
    assert close_unfinished(path, "cancer", "rollback cancer") == []
    assert read_history(path, "other")[-1]["kind"] == "swap_started"
