"""Authorization of the local HTTP API, as API Gateway applies the template's rules.

AWS IAM routes want a request signed with Signature Version 4 for the service `execute-api` in the
stack's region; locally the only principal is the emulator's dummy one (`LOCAL_CREDENTIALS`, the
credentials `dozor local up` prints). A signature is checked the way AWS checks it: the canonical
request rebuilt from the signed headers, the string to sign, the HMAC chain of the secret key.
What fails gets API Gateway's own answers: 403 `{"message":"Forbidden"}` when unsigned, 403 with
AWS's messages for an unknown key, a wrong signature or a stale date; JWT routes want a bearer
token (401 `{"message":"Unauthorized"}`; the local stack checks its presence, not its issuer).

`sign` is the client side: the headers that make a request acceptable, for tests, the demo, the
benchmarks and anyone calling the local API from Python; `dozor call` sends one signed request
(to the local API, or with `--aws` to the deployed one with your credentials).
"""

from __future__ import annotations

import hmac
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

Authorization = Literal["AWS_IAM", "JWT", "NONE"]

SERVICE = "execute-api"
LOCAL_CREDENTIALS = Credentials("testing", "testing")  # the emulator's dummy principal
_TIMESTAMP = "%Y%m%dT%H%M%SZ"
_MAX_SKEW = timedelta(minutes=5)  # as AWS: a signature dated more than 5 minutes away is refused


@dataclass(frozen=True)
class Denied:
    """An answer API Gateway gives before any function runs."""

    status: int
    message: str

    @property
    def body(self) -> bytes:
        return json.dumps({"message": self.message}).encode()


FORBIDDEN = Denied(403, "Forbidden")
UNAUTHORIZED = Denied(401, "Unauthorized")
_UNKNOWN_KEY = Denied(403, "The security token included in the request is invalid.")
_BAD_SIGNATURE = Denied(
    403,
    "The request signature we calculated does not match the signature you provided. Check your AWS "
    "Secret Access Key and signing method. Consult the service documentation for details.",
)


def sign(
    method: str,
    url: str,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    *,
    region: str,
    credentials: Credentials = LOCAL_CREDENTIALS,
) -> dict[str, str]:
    """`headers` plus the SigV4 ones (Authorization, X-Amz-Date) for a call to the API at `url`."""
    request = AWSRequest(method=method.upper(), url=url, data=body, headers=dict(headers or {}))
    SigV4Auth(credentials, SERVICE, region).add_auth(request)
    return {name: str(value) for name, value in request.headers.items()}


class SigV4Verifier:
    """Checks SigV4 signatures of requests to the local API against known key pairs."""

    def __init__(self, region: str, keys: Mapping[str, str] | None = None) -> None:
        self.region = region
        self.keys = dict(keys or {LOCAL_CREDENTIALS.access_key: LOCAL_CREDENTIALS.secret_key})

    def check(
        self,
        method: str,
        target: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        now: datetime | None = None,
    ) -> Denied | None:
        """None when the request is signed by a known key; otherwise API Gateway's answer."""
        values: dict[str, str] = {}
        for name, value in headers:
            lower = name.lower()
            values[lower] = f"{values[lower]},{value}" if lower in values else value
        authorization = values.get("authorization", "")
        if not authorization.startswith("AWS4-HMAC-SHA256 "):
            return FORBIDDEN
        fields = _auth_fields(authorization.removeprefix("AWS4-HMAC-SHA256 "))
        scope = fields.get("Credential", "").split("/")
        if len(scope) != 5 or scope[2:] != [self.region, SERVICE, "aws4_request"]:
            return _BAD_SIGNATURE if len(scope) == 5 else FORBIDDEN
        secret = self.keys.get(scope[0])
        if secret is None:
            return _UNKNOWN_KEY
        stamp = values.get("x-amz-date", "")
        try:
            signed_at = datetime.strptime(stamp, _TIMESTAMP).replace(tzinfo=UTC)
        except ValueError:
            return FORBIDDEN
        if abs((now or datetime.now(UTC)) - signed_at) > _MAX_SKEW or not stamp.startswith(scope[1]):
            return Denied(403, f"Signature expired: {stamp} is now earlier or later than 5 minutes")
        signed = [h for h in fields.get("SignedHeaders", "").split(";") if h]
        if "host" not in signed or any(h not in values for h in signed):
            return _BAD_SIGNATURE
        expected = _signature(
            method,
            target,
            {h: values[h] for h in signed},
            body,
            stamp,
            Credentials(scope[0], secret),
            self.region,
        )
        if not hmac.compare_digest(expected, fields.get("Signature", "")):
            return _BAD_SIGNATURE
        return None


def _auth_fields(text: str) -> dict[str, str]:
    fields = {}
    for part in text.split(","):
        name, _, value = part.strip().partition("=")
        fields[name] = value
    return fields


def _signature(
    method: str,
    target: str,
    headers: Mapping[str, str],
    body: bytes,
    stamp: str,
    credentials: Credentials,
    region: str,
) -> str:
    """The signature AWS computes for the request as received (only its signed headers count)."""
    request = AWSRequest(
        method=method.upper(), url=f"http://{headers['host']}{target}", data=body, headers={}
    )
    for name, value in headers.items():
        request.headers[name] = value
    request.context["timestamp"] = stamp
    signer = SigV4Auth(credentials, SERVICE, region)
    canonical = signer.canonical_request(request)
    return str(signer.signature(signer.string_to_sign(request, canonical), request))


# --- `dozor call`: a signed request to the API, local or deployed ----------------------------------


def configure_call(parser: Any) -> None:
    """`dozor call METHOD PATH [--data @file]`: one SigV4-signed request, the answer on stdout."""
    parser.add_argument("method", help="GET, POST, ...")
    parser.add_argument("path", help="e.g. /v1/orders/score or /v1/orders/o-1/decision")
    parser.add_argument("--data", help="the body: JSON text, or @file")
    parser.add_argument(
        "--url", default="http://127.0.0.1:3000", help="the API's base URL (ApiUrl when deployed)"
    )
    parser.add_argument("--region", default="eu-central-1", help="the region the API runs in")
    parser.add_argument(
        "--aws",
        action="store_true",
        help="sign with your AWS credentials (the default chain) instead of the local principal",
    )
    parser.set_defaults(run=run_call)


def run_call(args: Any) -> int:
    import urllib.error  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    body = b""
    if args.data:
        body = Path(args.data[1:]).read_bytes() if args.data.startswith("@") else args.data.encode()
    credentials = LOCAL_CREDENTIALS
    if args.aws:
        import boto3  # noqa: PLC0415

        found = boto3.Session().get_credentials()
        if found is None:
            print("dozor call: no AWS credentials found", file=sys.stderr)
            return 2
        credentials = found.get_frozen_credentials()
    url = args.url.rstrip("/") + args.path
    headers = {"content-type": "application/json"} if body else {}
    signed = sign(args.method, url, body, headers, region=args.region, credentials=credentials)
    request = urllib.request.Request(url, data=body or None, headers=signed, method=args.method.upper())
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, payload = error.code, error.read()
    print(payload.decode(errors="replace"))
    print(f"HTTP {status}", file=sys.stderr)
    return 0 if status < 400 else 1
