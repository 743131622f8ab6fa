"""`mlops-tui models import|list|show|example`: the model store on the operator's machine."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from cluster.errors import UsageError
from console import exit_codes
from console.commands import models_update
from console.inventory_path import open_inventory


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models", help="import scikit-learn models as ONNX versions; list and show them"
    )
    p.add_argument(
        "--store",
        help="model store directory (default: the inventory's model_store, else ./models)",
    )
    p.add_argument("-i", "--inventory", help="inventory whose model_store to use")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    imp = msub.add_parser(
        "import", help="convert a skops (or trusted pickle) scikit-learn model to a new version"
    )
    imp.add_argument(
        "path",
        help="skops file (skops.io.dump) of a fitted estimator or pipeline; a joblib or pickle "
        "file needs --trust-pickle",
    )
    imp.add_argument("--name", required=True, help="model name in the store")
    imp.add_argument(
        "--sample",
        help="CSV with a header naming the model's columns, read with the types it was fitted "
        "with (an empty cell is a missing value; a label/target column gives holdout metrics)",
    )
    imp.add_argument(
        "--train",
        metavar="CSV",
        help="the labelled rows it was fitted on, read as --sample is: kept beside the version "
        "(never shipped) so that `models update --method batch` refits on them too",
    )
    imp.add_argument(
        "--trust-pickle",
        action="store_true",
        help="load a joblib or pickle file: loading one runs any code it holds, on this machine, "
        "which holds the fleet's SSH keys; only for files you made yourself",
    )
    imp.add_argument("--json", action="store_true")
    ls = msub.add_parser("list", help="every model and version")
    ls.add_argument("--json", action="store_true")
    show = msub.add_parser("show", help="one version's metadata, after verifying its sha256")
    show.add_argument("ref", metavar="NAME[:VERSION]")
    show.add_argument("--json", action="store_true")
    ex = msub.add_parser(
        "example",
        help="train demo models: on scikit-learn's breast-cancer data (v1 good, v2 better, v3 "
        "bad), or on a generated churn table with categories and missing values (v1 good, v2 bad)",
    )
    ex.add_argument(
        "dataset", nargs="?", choices=("breast-cancer", "churn"), default="breast-cancer"
    )
    ex.add_argument("--name", help="model name in the store (default: the dataset's)")
    ex.add_argument("--json", action="store_true")
    models_update.add_parser(msub)
    p.set_defaults(run=run)


def store_root(args: argparse.Namespace) -> Path:
    if args.store:
        return Path(args.store)
    if args.inventory or os.environ.get("MLOPS_INVENTORY") or Path("inventory.yaml").exists():
        return open_inventory(args.inventory).settings.model_store
    return Path("models")


async def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    # scikit-learn and skl2onnx take a second to import: only the models commands pay for it.
    from cluster.models.store import ModelStore

    store = ModelStore(store_root(args))
    action = args.models_command
    if action == "update":
        return await models_update.run(args, out, err)
    if action == "import":
        return await asyncio.to_thread(_import, store, args, out, err)
    if action == "example":
        return await asyncio.to_thread(_example, store, args, out, err)
    if action == "list":
        return _list(store, args, out)
    return _show(store, args, out)


def _import(store: Any, args: argparse.Namespace, out: Console, err: Console) -> int:
    from cluster.models.convert import load_estimator
    from cluster.models.errors import ModelError
    from cluster.models.importer import import_model, read_sample_csv
    from cluster.models.store import check_name
    from cluster.models.tabular import infer_schema

    check_name(args.name, "model name")  # before any work: the name becomes a directory
    source = Path(args.path)
    with err.status(f"importing {source}: convert, check parity, store", spinner="dots"):
        # Once: loading is the slow (and, for a pickle, risky) part.
        estimator = load_estimator(source, trust_pickle=args.trust_pickle)
        sample = training = None
        if args.sample or args.train:
            try:
                schema = infer_schema(estimator)
            except ModelError as exc:
                raise ModelError(f"{source}: {exc}") from None
            sample = read_sample_csv(Path(args.sample), schema) if args.sample else None
            training = read_sample_csv(Path(args.train), schema) if args.train else None
            if training is not None and training.y is None:
                raise ModelError(f"{args.train}: no label column (label, target or y): "
                                 "training rows need their labels")  # fmt: skip
        result = import_model(store, source, args.name, sample, estimator, training=training)
    _report([result], args, out)
    return exit_codes.OK


def _example(store: Any, args: argparse.Namespace, out: Console, err: Console) -> int:
    from cluster.models.churn import make_churn_examples
    from cluster.models.examples import make_examples
    from cluster.models.store import check_name

    name = args.name or args.dataset
    check_name(name, "model name")
    if args.dataset == "churn":
        with err.status("training churn examples v1 (good), v2 (bad)", spinner="dots"):
            results = make_churn_examples(store, name)
    else:
        with err.status(
            "training breast-cancer examples v1 (good), v2 (better), v3 (bad)", spinner="dots"
        ):
            results = make_examples(store, name)
    _report(results, args, out)
    return exit_codes.OK


def _report(results: list[Any], args: argparse.Namespace, out: Console) -> None:
    if args.json:
        sys.stdout.write(json.dumps([r.to_dict() for r in results], indent=2) + "\n")
        return
    for r in results:
        what = "stored new version" if r.created else "identical to existing version"
        acc = r.metrics.get("accuracy")
        extra = f", holdout accuracy {acc:.3f}" if acc is not None else ""
        out.print(
            f"{r.name}:{r.version}  {what} ({r.task}, parity on {r.parity_rows} rows{extra})  {r.path}",
            highlight=False,
        )
        out.print(f"  input: {describe_schema(r.schema)}", highlight=False, soft_wrap=True)


def describe_schema(schema: Any) -> str:
    """One line an operator can write a request from: each column, its type, and whether it
    may be null."""
    parts = []
    for c in schema.columns:
        if c.kind.value == "category":
            cats = c.categories or ()
            shown = "|".join(cats[:4]) + ("|..." if len(cats) > 4 else "")
            kind = f"category {shown}" + ("" if c.unknown.value == "ignore" else ", others refused")
        else:
            kind = "number"
        parts.append(f"{c.name} ({kind}{', may be null' if c.nullable else ''})")
    shape = "records or lists of numbers" if schema.numeric else "records"
    return (
        f"{shape}: "
        + ", ".join(parts[:12])
        + (f", ... ({len(parts)} columns)" if len(parts) > 12 else "")
    )


def _list(store: Any, args: argparse.Namespace, out: Console) -> int:
    """Every version; one that cannot be read is listed as invalid (exit 1), the rest still are."""
    rows = store.listing()
    code = exit_codes.FAILED if any(r.invalid for r in rows) else exit_codes.OK
    if args.json:
        doc = {"store": str(store.root), "models": [r.to_dict() for r in rows]}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return code
    if not rows:
        out.print(f"no models in {store.root} yet: try `mlops-tui models example`")
        return exit_codes.OK
    table = Table(title=f"Models in {store.root}", title_justify="left")
    for col in (
        "model",
        "version",
        "task",
        "features",
        "estimator",
        "accuracy",
        "created",
        "sha256",
    ):
        table.add_column(col, no_wrap=True)
    for r in rows:
        if r.invalid:
            table.add_row(r.name, r.version, Text("invalid (below)", "red"), "", "", "", "", "")
            continue
        acc = r.metrics.get("accuracy")
        table.add_row(
            r.name,
            r.version,
            r.task,
            str(r.features),
            r.estimator or "",
            f"{acc:.3f}" if acc is not None else "",
            r.created or "",
            r.sha256[:12],
        )
    out.print(table)
    for r in rows:
        if r.invalid:  # whole, unwrapped, not markup: a reason names a file and may hold brackets
            out.print(Text(f"invalid: {r.name}:{r.version}: {r.invalid}", "red"))
    return code


def _show(store: Any, args: argparse.Namespace, out: Console) -> int:
    from cluster.models.store import check_name

    name, _, version = args.ref.partition(":")
    if not name:
        raise UsageError(f"'{args.ref}' is not NAME or NAME:VERSION")
    check_name(name, "model name")  # a UsageError: exit 2, nothing read outside the store
    if version:
        check_name(version, "version")
    found = store.get(name, version or None)  # verifies sha256
    doc = {**found.meta.raw, "path": str(found.path), "verified": True}
    if args.json:
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:  # reference histograms are for machines; people get the summary
        out.print_json(json.dumps({k: v for k, v in doc.items() if k != "reference"}))
    return exit_codes.OK
