"""What every screen shares: header, body, the `/` filter and `:` lines, footer, k9s keys.

`esc` closes the `:` or `/` line, then clears a filter, then goes back a screen. Actions that
change something are named in `MUTATING`; in read-only mode (or on a read-only target) they
are greyed out in the footer and refused with the reason when invoked another way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Protocol

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer, Header, Input

from console.tui.commands import CommandError, parse
from console.tui.widgets.command_line import CommandLine
from console.tui.widgets.filter_line import FilterLine
from console.tui.widgets.table import KeyedTable

if TYPE_CHECKING:
    from console.tui.app import MlopsApp


class Filterable(Protocol):
    """A table or log that `/` narrows down."""

    filter_text: str

    def set_filter(self, text: str) -> None: ...

    def focus(self, scroll_visible: bool = True) -> object: ...


class ConsoleScreen(Screen[None]):
    """Base of the console's screens; subclasses yield their body from `compose_body`."""

    BINDINGS = [
        Binding(":", "command_line", "Jump", key_display=":"),
        Binding("/", "filter", "Filter", key_display="/"),
        Binding("?", "help", "Keys", key_display="?"),
        Binding("escape", "back", "Back", show=False),
    ]
    # Actions that change a deployment: refused, with the reason, in read-only mode.
    MUTATING: ClassVar[frozenset[str]] = frozenset()

    @property
    def console(self) -> MlopsApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header(icon="≡")
        yield from self.compose_body()
        yield FilterLine()
        yield CommandLine(self.console.inventory)
        yield Footer()

    def compose_body(self) -> ComposeResult:
        yield from ()

    @property
    def table(self) -> Filterable | None:
        """What `/` filters: the screen's table, if it has one."""
        try:
            return self.query(KeyedTable).first()
        except NoMatches:
            return None

    def targets_in_view(self) -> list[str]:
        """The targets this screen's actions would change (for read-only targets)."""
        return []

    def refusal(self) -> str | None:
        """Why this screen may not change anything now, or None."""
        return self.console.refusal(self.targets_in_view())

    def refused(self) -> bool:
        """Say why an action that changes something is refused; True when it is."""
        why = self.refusal()
        if why:
            self.notify(why, title="read-only", severity="warning")
        return why is not None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "filter":
            return self.table is not None
        if action in self.MUTATING and self.refusal():
            return None  # shown greyed out; invoking it says why
        return True

    def action_command_line(self) -> None:
        self.query_one(CommandLine).open()

    def action_filter(self) -> None:
        line = self.query_one(FilterLine)
        if self.table is not None:
            line.value = self.table.filter_text
        line.open()

    def action_help(self) -> None:
        from console.tui.screens.help import HelpScreen

        self.app.push_screen(HelpScreen(self))

    async def action_back(self) -> None:
        command = self.query_one(CommandLine)
        filter_line = self.query_one(FilterLine)
        table = self.table
        if command.display:
            command.close()
        elif filter_line.display:
            filter_line.close()
            filter_line.value = ""
            if table is not None:
                table.set_filter("")
        elif table is not None and table.filter_text:
            table.set_filter("")
            self.sub_title = ""
        else:
            await self.app.action_back()
            return
        self.focus_body()

    def focus_body(self) -> None:
        if self.table is not None:
            self.table.focus()

    @on(Input.Submitted, "#command-line")
    def _jump(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one(CommandLine).close()
        try:
            place, argument = parse(event.value, self.console.inventory)
        except CommandError as exc:
            self.notify(str(exc), severity="error")
            self.focus_body()
            return
        self.console.jump(place, argument)

    @on(Input.Changed, "#filter-line")
    def _filter(self, event: Input.Changed) -> None:
        event.stop()
        if self.table is not None:
            self.table.set_filter(event.value)
            self.sub_title = f"/{event.value}" if event.value else ""

    @on(Input.Submitted, "#filter-line")
    def _keep_filter(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one(FilterLine).close()
        self.focus_body()
