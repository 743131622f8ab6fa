"""The jump host in `ansible_ssh_common_args`: `-J host`, `-o ProxyJump=host`, or the older
`-o ProxyCommand="ssh -W %h:%p host"`, as `[user@]host[:port]`."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

_SPEC = re.compile(r"^(?:(?P<user>[^@\s]+)@)?(?P<host>[^@:\s\[\]]+)(?::(?P<port>\d+))?$")


class JumpError(ValueError):
    """The arguments name a jump we cannot follow; the message says which and why."""


@dataclass(frozen=True)
class Jump:
    host: str
    user: str | None = None
    port: int | None = None


def jump_of(args: str) -> Jump | None:
    """The jump host `args` (ssh options) name, or None when they name none."""
    try:
        tokens = shlex.split(args)
    except ValueError as exc:
        raise JumpError(f"cannot read the ssh arguments: {exc}") from None
    found: str | None = None
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        value: str | None = None
        if tok == "-J" or tok == "-o":
            if i + 1 >= len(tokens):
                raise JumpError(f"'{tok}' is missing its value")
            value, i = tokens[i + 1], i + 2
            if tok == "-J":
                found = value
                continue
        elif tok.startswith("-J"):
            found, i = tok[2:], i + 1
            continue
        elif tok.startswith("-o"):
            value, i = tok[2:], i + 1
        else:
            i += 1
            continue
        found = _from_option(value) or found
    if found is None or found.lower() == "none":
        return None
    if "," in found:
        raise JumpError(
            f"'{found}' jumps through several hosts; give each jump host its own "
            "ansible_ssh_common_args so each hop is one host"
        )
    m = _SPEC.match(found)
    if m is None:
        raise JumpError(f"'{found}' is not [user@]host[:port]")
    port = int(m.group("port")) if m.group("port") else None
    return Jump(m.group("host"), m.group("user"), port)


def _from_option(option: str) -> str | None:
    """The jump in one `-o` option (`ProxyJump=h`, `ProxyJump h`, `ProxyCommand=...`)."""
    key, _, value = option.replace("=", " ", 1).partition(" ")
    key, value = key.strip().lower(), value.strip()
    if key == "proxyjump":
        return value
    if key == "proxycommand":
        return _from_proxy_command(value)
    return None


def _from_proxy_command(command: str) -> str | None:
    """`ssh [-q] [-W %h:%p] [-p PORT] [-l USER] [user@]host`: the host ssh is asked to reach."""
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise JumpError(f"cannot read ProxyCommand '{command}': {exc}") from None
    if not words or words[0].rsplit("/", 1)[-1] != "ssh":
        if command.lower() == "none":
            return None
        raise JumpError(
            f"ProxyCommand '{command}' is not `ssh -W %h:%p host`; use -J host (ProxyJump)"
        )
    takes_value = set("BbcDEeFIiJLlmOopQRSWw")
    host: str | None = None
    user: str | None = None
    port: str | None = None
    i = 1
    while i < len(words):
        w = words[i]
        if w.startswith("-") and len(w) >= 2:
            flag = w[1]
            if flag in takes_value:
                value = w[2:] or (words[i + 1] if i + 1 < len(words) else "")
                i += 1 if w[2:] else 2
                if flag == "p":
                    port = value
                elif flag == "l":
                    user = value
                continue
            i += 1
            continue
        if host is None:
            host = w
        i += 1
    if host is None:
        raise JumpError(f"ProxyCommand '{command}' names no host")
    if user is not None and "@" not in host:
        host = f"{user}@{host}"
    return f"{host}:{port}" if port is not None else host
