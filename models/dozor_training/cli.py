"""The `dozor` command line.

Every subcommand is one entry of COMMANDS: its name, a one-line help, and the "module:function"
that configures it. The CLI adds the subcommand's parser itself (``subparsers.add_parser(name,
help=command.help)``) and calls ``function(parser)``, which adds the arguments and must call
``parser.set_defaults(run=<callable(args) -> int>)``. So a command's module needs nothing from
this one: the local stack (`dozor_local`) sits below the tooling, and only this table knows both.
Only the chosen subcommand's module is imported, so `dozor invoke` does not pay for training
code and `dozor --help` stays instant. To add a subcommand, append a `Command` here.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    configure: str  # "package.module:function", called as function(parser)


COMMANDS: list[Command] = [
    Command(
        "invoke",
        "run one function's handler on an event, with template.yaml deployed on in-process moto",
        "dozor_local.invoke:configure",
    ),
    Command(
        "demo",
        "simulate a marketplace, score it through the local stack and write a report",
        "dozor_training.demo:configure",
    ),
    Command(
        "local",
        "`local up`: the whole stack on this machine (emulator, API on :3000, pollers) until Ctrl-C",
        "dozor_local.server:configure",
    ),
    Command(
        "call",
        "one SigV4-signed request to the API (local by default; --url ApiUrl --aws when deployed)",
        "dozor_local.auth:configure_call",
    ),
    Command(
        "train-fraud",
        "simulate history, replay it through the feature code and train the fraud model",
        "dozor_training.train_commands:configure_train_fraud",
    ),
    Command(
        "train",
        "train, evaluate and report a fraud model on an orders file and a labels file (point-in-time)",
        "dozor_training.train_commands:configure_train",
    ),
    Command(
        "simulate",
        "write a simulated marketplace history (orders, labels) as CSV, JSONL or Parquet",
        "dozor_training.history_commands:configure_simulate",
    ),
    Command(
        "score-batch",
        "score a history file point-in-time as serving would have; backtest it against labels",
        "dozor_training.history_commands:configure_score_batch",
    ),
    Command(
        "publish",
        "put a trained model into the registry as the active (or --shadow) version; rollback with --version",
        "dozor_local.registry_cli:configure_publish",
    ),
    Command(
        "registry",
        "the model registry's active and shadow versions (status) and their changes (history)",
        "dozor_local.registry_cli:configure_registry",
    ),
    Command(
        "export-history",
        "dump recorded decisions with their orders, and labels, as JSON Lines for training",
        "dozor_local.export_history:configure",
    ),
    Command(
        "train-parcels",
        "simulate orders and their parcels, learn lane deadlines and train the parcel-loss model",
        "dozor_training.parcels.train:configure_train_parcels",
    ),
    Command(
        "lists",
        "the allow / block / review lists: add, remove, show, history (audited; through the console's API)",
        "dozor_training.lists_commands:configure",
    ),
    Command(
        "lanes",
        "`lanes report`: delivery time, losses, returns, fraud and alerts per carrier and region (HTML, CSV)",
        "dozor_training.parcels.lanes_commands:configure",
    ),
    Command(
        "bench-peak",
        "the 11.11 peak (a top seller at 2,000 orders/s) through the handlers on moto, with contention",
        "dozor_training.fraud.peak:configure",
    ),
]


def _load(target: str) -> Callable[..., Any]:
    module_name, _, attribute = target.partition(":")
    loaded: Callable[..., Any] = getattr(importlib.import_module(module_name), attribute)
    return loaded


def configure(command: Command, parser: argparse.ArgumentParser) -> None:
    """Load the command's module and let it fill `parser`."""
    _load(command.configure)(parser)


def _chosen(argv: Sequence[str]) -> str | None:
    """The subcommand named on the command line (the first argument that is not an option)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser for `argv`: only the named subcommand is complete (all of them when `argv` is None)."""
    parser = argparse.ArgumentParser(
        prog="dozor", description="Dozor: fraud detection on AWS Lambda, locally."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = None if argv is None else _chosen(argv)
    for command in COMMANDS:
        subparser = subparsers.add_parser(command.name, help=command.help, description=command.help)
        if argv is None or command.name == chosen:
            configure(command, subparser)
        # otherwise it is listed in --help without importing its module
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(arguments).parse_args(arguments)
    run: Callable[[argparse.Namespace], int | None] = args.run
    return int(run(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
