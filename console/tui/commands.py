"""Where `:` and the command palette can go: parsing, completion, palette hits.

`:apps`, `:app NAME`, `:rollout APP`, `:update APP`, `:hosts`, `:models`, `:history [APP]`, `:logs NODE`,
`:plan [TARGET]`, `:q`. Names complete with Tab (or →), as in k9s.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.suggester import Suggester

from cluster.inventory import Inventory

if TYPE_CHECKING:
    from console.tui.app import MlopsApp


@dataclass(frozen=True)
class Place:
    """A `:` command: where it goes, what its argument names, what it is for."""

    name: str
    argument: str  # "" none, "app", "host", "target"; a trailing "?" makes it optional
    help: str


PLACES = (
    Place("apps", "", "every app at a glance (the start screen)"),
    Place("app", "app", "one app, live: latency, traffic, replicas, accuracy, drift"),
    Place("rollout", "app", "swap an app to another version behind its gates"),
    Place("update", "app", "train a better version from the app's live labels, then swap"),
    Place("hosts", "", "every host: reachable, OS, Python, Ray"),
    Place("models", "", "the model store: versions, holdout metrics, sha256"),
    Place("history", "app?", "every swap, step, gate and outcome, newest first"),
    Place("logs", "host", "follow a node's Serve logs"),
    Place("plan", "target?", "plan, apply or destroy a target"),
    Place("quit", "", "leave the console"),
)
ALIASES = {"overview": "apps", "swap": "rollout", "q": "quit", "node": "logs", "log": "logs"}


class CommandError(ValueError):
    """A `:` line that names nothing; the message says what would."""


def names_for(inventory: Inventory, kind: str) -> list[str]:
    kind = kind.rstrip("?")
    if kind == "app":
        return list(inventory.apps)
    if kind == "host":
        return list(inventory.hosts)
    if kind == "target":
        return list(inventory.targets)
    return []


def parse(text: str, inventory: Inventory) -> tuple[str, str]:
    """(place, argument) for a `:` line; CommandError explains a wrong one."""
    words = text.strip().lstrip(":").split()
    if not words:
        raise CommandError("type a place: " + ", ".join(p.name for p in PLACES))
    word = ALIASES.get(words[0], words[0])
    place = next((p for p in PLACES if p.name == word), None)
    if place is None:
        close = [p.name for p in PLACES if p.name.startswith(word[:2])]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise CommandError(f"no place called '{words[0]}'{hint}; ? lists the keys")
    argument = " ".join(words[1:])
    if not place.argument:
        if argument:
            raise CommandError(f":{place.name} takes no argument")
        return place.name, ""
    known = names_for(inventory, place.argument)
    kind = place.argument.rstrip("?")
    if not argument:
        if place.argument.endswith("?"):
            return place.name, ""
        raise CommandError(f":{place.name} needs a {kind}: {', '.join(known) or 'none defined'}")
    if argument not in known:
        raise CommandError(f"no {kind} named '{argument}' (known: {', '.join(known) or 'none'})")
    return place.name, argument


class CommandSuggester(Suggester):
    """Completes place names, then the app, host or target they take."""

    def __init__(self, inventory: Inventory) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.inventory = inventory

    async def get_suggestion(self, value: str) -> str | None:
        colon = ":" if value.startswith(":") else ""  # typed out of habit: still completes
        value = value[len(colon) :]
        found = self._complete(value)
        return colon + found if found is not None else None

    def _complete(self, value: str) -> str | None:
        if " " not in value:
            words = [p.name for p in PLACES] + list(ALIASES)
            return next((w for w in words if w.startswith(value) and w != value), None)
        head, _, rest = value.partition(" ")
        place = next((p for p in PLACES if p.name == ALIASES.get(head, head)), None)
        if place is None or not place.argument:
            return None
        match = next(
            (n for n in names_for(self.inventory, place.argument) if n.startswith(rest)), None
        )
        return f"{head} {match}" if match is not None and match != rest else None


class PlacesProvider(Provider):
    """Ctrl+P: every app, host, screen and action, by name."""

    def _entries(self) -> list[tuple[str, str, str, str]]:
        """(title, help, place, argument)."""
        app: MlopsApp = self.app  # type: ignore[assignment]
        inventory = app.inventory
        out = [(f":{p.name}", p.help, p.name, "") for p in PLACES if not p.argument.strip("?")]
        out += [(f":{p.name}", p.help, p.name, "") for p in PLACES if p.argument.endswith("?")]
        for name, a in inventory.apps.items():
            out.append((f"app {name}", f"live view of {name} on {a.target}", "app", name))
            out.append((f"rollout {name}", f"swap {name} to another version", "rollout", name))
            out.append((f"history {name}", f"swaps of {name}", "history", name))
        for name, host in inventory.hosts.items():
            out.append((f"logs {name}", f"Serve logs of {host.endpoint}", "logs", name))
        for name in inventory.targets:
            out.append((f"plan {name}", f"plan, apply or destroy {name}", "plan", name))
        return out

    async def discover(self) -> Hits:
        app: MlopsApp = self.app  # type: ignore[assignment]
        for title, text, place, argument in self._entries():
            yield DiscoveryHit(title, partial(app.jump, place, argument), help=text)

    async def search(self, query: str) -> Hits:
        app: MlopsApp = self.app  # type: ignore[assignment]
        matcher = self.matcher(query)
        for title, text, place, argument in self._entries():
            score = matcher.match(title)
            if score > 0:
                yield Hit(
                    score, matcher.highlight(title), partial(app.jump, place, argument), help=text
                )
