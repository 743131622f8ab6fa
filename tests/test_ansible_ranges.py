"""Host ranges expand exactly as Ansible's own `expand_hostname_range` expands them."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleError
from ansible.plugins.inventory import expand_hostname_range
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster.inventory.ansible.ranges import RangeError, expand, split_port

_number = st.integers(0, 30).map(str) | st.integers(0, 30).map(lambda n: f"{n:03d}")
_letter = st.sampled_from("abcxyzABCXYZ")
_bound = st.one_of(
    st.tuples(_number, _number), st.tuples(_letter, _letter), st.tuples(st.just(""), _number)
)
_step = st.one_of(st.just(""), st.integers(1, 4).map(lambda n: f":{n}"))
_text = st.sampled_from(["", "web", "db-", ".example.com", "-rack", "node"])


@st.composite
def patterns(draw: st.DrawFn) -> str:
    parts = [draw(_text)]
    for _ in range(draw(st.integers(1, 2))):
        lo, hi = draw(_bound)
        parts.append(f"[{lo}:{hi}{draw(_step)}]")
        parts.append(draw(_text))
    return "".join(parts)


@settings(max_examples=300, deadline=None)
@given(patterns())
def test_ranges_expand_like_ansible(pattern: str) -> None:
    try:
        want: list[str] | None = expand_hostname_range(pattern)
    except (AnsibleError, ValueError):
        want = None
    try:
        got: list[str] | None = expand(pattern)
    except RangeError:
        got = None
    assert got == want, pattern


@pytest.mark.parametrize(
    ("pattern", "hosts"),
    [
        ("web[01:03].example.com", ["web01.example.com", "web02.example.com", "web03.example.com"]),
        ("shop-[a:c]", ["shop-a", "shop-b", "shop-c"]),
        ("db[1:9:2]", ["db1", "db3", "db5", "db7", "db9"]),
        ("x[y:B]", ["xy", "xz", "xA", "xB"]),
        ("n[0:1]r[a:b]", ["n0ra", "n0rb", "n1ra", "n1rb"]),
    ],
)
def test_documented_examples(pattern: str, hosts: list[str]) -> None:
    assert expand(pattern) == hosts


def test_ports_are_split_outside_ranges_only() -> None:
    assert split_port("web[01:03]:2222") == ("web[01:03]", 2222)
    assert split_port("web[1:3]") == ("web[1:3]", None)
    assert split_port("db:22") == ("db", 22)


def test_a_huge_range_is_refused_not_expanded() -> None:
    with pytest.raises(RangeError, match="more than 100,000 hosts"):
        expand("h[0:9999999]")
    with pytest.raises(RangeError, match="more than 100,000 hosts"):
        expand("a[0:999]b[0:999]")
