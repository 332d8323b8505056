"""The `dozor` command line.

Every subcommand is one entry of COMMANDS: its name, a one-line help, and the "module:function"
that adds its parser. That function receives the subparsers object, must call
``subparsers.add_parser(<name>, ...)`` and ``parser.set_defaults(run=<callable(args) -> int>)``.
Only the chosen subcommand's module is imported, so `dozor invoke` does not pay for training
code and `dozor --help` stays instant. To add a subcommand, append a `Command` here.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Subparsers = Any  # argparse._SubParsersAction is private; its add_parser is all that is used


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    adder: str  # "package.module:function", called as function(subparsers)


COMMANDS: list[Command] = [
    Command(
        "invoke",
        "run one function's handler on an event, with template.yaml deployed on in-process moto",
        "dozor_local.invoke:add_parser",
    ),
    Command(
        "demo",
        "simulate a marketplace, score it through the local stack and write a report",
        "dozor_local.cli:add_demo",
    ),
    Command(
        "local",
        "`local up`: the whole stack on this machine (emulator, API on :3000, pollers) until Ctrl-C",
        "dozor_local.server:add_parser",
    ),
    Command(
        "train-fraud",
        "simulate history, replay it through the feature code and train the fraud model",
        "dozor_training.commands:add_train_fraud",
    ),
    Command(
        "train",
        "train, evaluate and report a fraud model on an orders file and a labels file (point-in-time)",
        "dozor_training.commands:add_train",
    ),
    Command(
        "simulate",
        "write a simulated marketplace history (orders, labels) as CSV, JSONL or Parquet",
        "dozor_training.history_commands:add_simulate",
    ),
    Command(
        "score-batch",
        "score a history file point-in-time as serving would have; backtest it against labels",
        "dozor_training.history_commands:add_score_batch",
    ),
    Command(
        "publish",
        "put a trained model into the registry as the active (or --shadow) version; rollback with --version",
        "dozor_local.registry_cli:add_publish",
    ),
    Command(
        "registry",
        "the model registry's active and shadow versions (status) and their changes (history)",
        "dozor_local.registry_cli:add_registry",
    ),
    Command(
        "export-history",
        "dump recorded decisions with their orders, and labels, as JSON Lines for training",
        "dozor_local.export_history:add_export_history",
    ),
    Command(
        "train-parcels",
        "simulate orders and their parcels, learn lane deadlines and train the parcel-loss model",
        "dozor_training.train_parcels:add_train_parcels",
    ),
]


def _load(target: str) -> Callable[..., Any]:
    module_name, _, attribute = target.partition(":")
    loaded: Callable[..., Any] = getattr(importlib.import_module(module_name), attribute)
    return loaded


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
        if argv is None or command.name == chosen:
            _load(command.adder)(subparsers)
        else:  # listed in --help without importing its module
            subparsers.add_parser(command.name, help=command.help)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(arguments).parse_args(arguments)
    run: Callable[[argparse.Namespace], int | None] = args.run
    return int(run(args) or 0)


def help_of(name: str) -> str:
    return next(command.help for command in COMMANDS if command.name == name)


# --- demo: the training engineers' module, imported only when chosen ---------------------------


def add_demo(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("demo", help=help_of("demo"))
    parser.add_argument("--days", type=int, default=5, help="days of simulated marketplace history")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("demo-output"), help="where the report goes")
    # 30: what keeps the default demo, 30 days of parcels included, under 3 minutes on 2 cores
    parser.add_argument("--orders-per-day", type=int, default=30, help="an ordinary day's orders")
    parser.set_defaults(run=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from dozor_training.demo import main as demo_main  # noqa: PLC0415 - heavy; only for `dozor demo`

    return int(demo_main(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
