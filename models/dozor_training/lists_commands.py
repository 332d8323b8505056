"""`dozor lists`: the allow / block / review lists from the command line, through the console's API.

    dozor lists add block card fp_9c1e4b7a2d83 --reason "chargeback wave"     # or allow / review
    dozor lists add review address "RU|RU-MOW|Moscow|119021|ul. Lva Tolstogo 16" --reason "drop address"
    dozor lists remove card fp_9c1e4b7a2d83 --reason "bank replaced the card"
    dozor lists show [--list block]
    dozor lists history card#<hash>                                          # a key `show` printed

Each command is one signed request to the same routes the console uses (`POST
/v1/console/lists/changes`, `GET /v1/console/lists`, `GET /v1/console/lists/history`), so a change
made here is recorded exactly as one made in the page: keyed (a card or email is never stored, only
its keyed hash), applied to scoring, and audited with who made it (the principal that signed the
request, never a name given on the command line) and why. Locally the request is signed by the
emulator's principal; `--url <ApiUrl> --aws` signs with your AWS credentials for the deployed API.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

LISTS = ("allow", "block", "review")
KINDS = ("card", "device", "email", "address", "buyer")


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="lists_command", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="put an entity on a list (it moves there from any other)")
    add.add_argument("list", choices=LISTS)
    _entity_arguments(add)
    remove = actions.add_parser("remove", help="take an entity off every list")
    _entity_arguments(remove)
    show = actions.add_parser("show", help="the entities on the lists, newest first (JSON lines)")
    show.add_argument("--list", choices=LISTS, help="one list only")
    history = actions.add_parser("history", help="one entity's changes, newest first (JSON lines)")
    history.add_argument("entity", help="its key, as `dozor lists show` prints it (card#<hash>, buyer#<id>)")
    for sub in (add, remove, show, history):
        _api_options(sub)
    parser.set_defaults(run=run)


def _entity_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument(
        "value",
        help="card fingerprint, device id, email, buyer id, or country|region|city|postal code|street",
    )
    parser.add_argument("--reason", required=True, help="why (recorded with who made the change)")


def _api_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url", default="http://127.0.0.1:3000", help="the API's base URL (ApiUrl when deployed)"
    )
    parser.add_argument("--region", default="eu-central-1", help="the region the API runs in")
    parser.add_argument(
        "--aws", action="store_true", help="sign with your AWS credentials instead of the local principal"
    )


def request(args: argparse.Namespace, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """One signed call to the API: (status, the JSON answer)."""
    from dozor_local.auth import LOCAL_CREDENTIALS, sign  # noqa: PLC0415 - keeps `dozor --help` instant

    credentials = LOCAL_CREDENTIALS
    if args.aws:
        import boto3  # noqa: PLC0415

        found = boto3.Session().get_credentials()
        if found is None:
            raise SystemExit("dozor lists: no AWS credentials found")
        credentials = found.get_frozen_credentials()
    url = args.url.rstrip("/") + path
    data = b"" if body is None else json.dumps(body).encode()
    headers = {"content-type": "application/json"} if data else {}
    signed = sign(method, url, data, headers, region=args.region, credentials=credentials)
    outgoing = urllib.request.Request(url, data=data or None, headers=signed, method=method)
    try:
        with urllib.request.urlopen(outgoing, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        text = error.read()
        try:
            return error.code, json.loads(text or b"null")
        except ValueError:
            return error.code, {"message": text.decode(errors="replace")}


def run(args: argparse.Namespace) -> int:
    command = args.lists_command
    if command in ("add", "remove"):
        change = {"kind": args.kind, "value": args.value, "reason": args.reason}
        change["list"] = args.list if command == "add" else None
        status, answer = request(args, "POST", "/v1/console/lists/changes", change)
        lines = [answer]
    elif command == "show":
        query = f"?list={args.list}" if args.list else ""
        status, answer = request(args, "GET", "/v1/console/lists" + query)
        lines = answer.get("entries", [answer]) if isinstance(answer, dict) and status < 400 else [answer]
    else:
        query = urllib.parse.urlencode({"entity": args.entity})
        status, answer = request(args, "GET", f"/v1/console/lists/history?{query}")
        lines = answer.get("changes", [answer]) if isinstance(answer, dict) and status < 400 else [answer]
    for line in lines:
        print(json.dumps(line, ensure_ascii=False))
    if status >= 400:
        print(f"dozor lists: HTTP {status}", file=sys.stderr)
        return 1
    return 0
