"""`mlops-tui tls show`: the CA to give clients, and each node's certificate and expiry."""

from __future__ import annotations

import argparse
import datetime as dt

from rich.console import Console
from rich.table import Table
from rich.text import Text

from cluster.tls.report import NodeCertReport, ca_report, node_certs
from cluster.transport import Connections
from console import exit_codes
from console.commands.provision_common import add_target_args
from console.inventory_path import open_inventory
from console.render.provision import json_line


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tls",
        help="HTTPS on the Serve ports: the inventory's CA and each node's certificate",
        description="Every Serve port speaks HTTPS with a certificate from the inventory's CA "
        "(tls: auto, the default), made by `apply` in tls_dir; give clients its ca.pem "
        "(curl --cacert). `apply` renews a certificate in its last 30 days.",
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="show")
    show = actions.add_parser("show", help="the CA's path and fingerprint, each node's expiry")
    add_target_args(show)
    show.set_defaults(run=run)


async def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    inventory = open_inventory(args.inventory, args.target, err=err)
    ca, authority = ca_report(inventory)
    nodes: list[NodeCertReport] = []
    async with Connections(inventory) as connections:
        with err.status("reading the nodes' certificates", spinner="dots"):
            async for node in node_certs(connections, args.target, authority):
                nodes.append(node)
    order = {h: i for i, h in enumerate(inventory.hosts)}
    nodes.sort(key=lambda n: (n.target, order.get(n.host, 0)))
    now = dt.datetime.now(dt.UTC)
    https = [n for n in nodes if n.mode != "http"]
    ok = ca.error is None or not https
    ok = ok and all(n.cert is not None and not n.renew_due(now) for n in https)
    if args.json:
        json_line(
            {
                "ok": ok,
                "ca": ca.to_dict(),
                "nodes": [n.to_dict(now) for n in nodes],
                "warnings": list(inventory.warnings),
            }
        )
        return exit_codes.OK if ok else exit_codes.FAILED
    if ca.exists and ca.fingerprint:
        out.print(Text.assemble(("CA ", "bold"), ca.cert_file))
        out.print(Text(f"   SHA-256 {ca.fingerprint}"))
        assert ca.not_after is not None
        out.print(Text(f"   valid until {ca.not_after:%Y-%m-%d}; give clients this file"))
    else:
        out.print(Text.assemble(("CA ", "bold"), ca.cert_file, ": ", (ca.error or "", "red")))
    table = Table(title="Node certificates", title_justify="left")
    for column in ("target", "host", "address", "serve", "expires", "days left", "issuer"):
        table.add_column(column)
    for n in nodes:
        if n.cert is None:
            table.add_row(n.target, n.host, n.address, n.mode, Text(n.error or "", "red"), "", "")
            continue
        days = n.cert.days_left(now)
        style = "red" if n.renew_due(now) else ""
        issuer = (
            "the host's own" if n.issued_by_ca is None else "CA" if n.issued_by_ca else "not the CA"
        )
        table.add_row(
            n.target, n.host, n.address, n.mode, f"{n.cert.not_after:%Y-%m-%d}",
            Text(f"{days:.0f}", style), issuer,
        )  # fmt: skip
    out.print(table)
    return exit_codes.OK if ok else exit_codes.FAILED
