"""Ansible host patterns: `web[01:03].example.com`, `shop-[a:c]`, `db[1:9:2]`, `host:2222`.

Expanded exactly as Ansible's `expand_hostname_range` does: the first `[begin:end(:step)]`
is expanded, then the rest of each result recursively; a begin with a leading zero keeps
the width (and then begin and end must be as wide); letters run through a-z then A-Z.
"""

from __future__ import annotations

import re
import string

# A range pattern can make many names from a few characters; past this many the pattern
# is a mistake (or a bomb), not a fleet.
MAX_EXPANDED = 100_000
_HOSTPORT = re.compile(r"^(.*[^:]):(\d+)$")


class RangeError(ValueError):
    """The pattern cannot be expanded; the message says why, in Ansible's words."""


def split_port(pattern: str) -> tuple[str, int | None]:
    """`name:2222` -> (`name`, 2222); a colon inside `[...]` is a range, not a port."""
    m = _HOSTPORT.match(pattern)
    if m is None or _depth_at_end(m.group(1)) != 0:
        return pattern, None
    return m.group(1), int(m.group(2))


def expand(pattern: str) -> list[str]:
    """Every host name `pattern` stands for, in Ansible's order."""
    out: list[str] = []
    _expand_into(pattern, out)
    return out


def _expand_into(pattern: str, out: list[str]) -> None:
    if "[" not in pattern:
        out.append(pattern)
        return
    head, _, rest = pattern.partition("[")
    inner, closed, tail = rest.partition("]")
    if not closed:
        raise RangeError(f"host range in '{pattern}' has no closing ']'")
    bounds = inner.split(":")
    if len(bounds) not in (2, 3):
        raise RangeError("host range must be begin:end or begin:end:step")
    begin, end = bounds[0] or "0", bounds[1]
    step_text = bounds[2] if len(bounds) == 3 else "1"
    if not end:
        raise RangeError("host range must specify end value")
    try:
        step = int(step_text)
    except ValueError:
        raise RangeError(f"host range step must be a number, got '{step_text}'") from None
    if step < 1:
        raise RangeError("host range step must be 1 or more")
    width = 0
    if begin[0] == "0" and len(begin) > 1:
        width = len(begin)
        if width != len(end):
            raise RangeError("host range must specify equal-length begin and end formats")
    letters = string.ascii_letters
    seq: list[str]
    if begin in letters and end in letters and len(begin) == 1 and len(end) == 1:
        i, j = letters.index(begin), letters.index(end)
        if i > j:
            raise RangeError("host range must have begin <= end")
        seq = list(letters[i : j + 1 : step])
    else:
        try:
            lo, hi = int(begin), int(end)
        except ValueError:
            raise RangeError(
                f"host range [{inner}] must run between two numbers or two letters"
            ) from None
        if (hi - lo) // step + 1 > MAX_EXPANDED:
            raise RangeError(f"host range [{inner}] makes more than {MAX_EXPANDED:,} hosts")
        seq = [str(n).zfill(width) for n in range(lo, hi + 1, step)]
    for item in seq:
        _expand_into(f"{head}{item}{tail}", out)
        if len(out) > MAX_EXPANDED:
            raise RangeError(f"'{pattern}' makes more than {MAX_EXPANDED:,} hosts")


def _depth_at_end(text: str) -> int:
    """How many `[` are still open at the end of `text`."""
    depth = 0
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth = max(0, depth - 1)
    return depth
