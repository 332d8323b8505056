"""The local API gateway against a throwaway function: the payload-2.0 event it builds and the
responses it maps back, over real HTTP on loopback."""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.credentials import Credentials

from dozor_local.auth import LOCAL_CREDENTIALS, configure_call, sign
from dozor_local.gateway import ApiContext, ApiGateway, Route
from dozor_local.invoke import Invocation

pytestmark = pytest.mark.e2e

API = ApiContext(account_id="123456789012", api_id="abc123", region="eu-central-1")


def echo(function: str, event: dict[str, Any]) -> Invocation:
    """A throwaway function: answers with the event it got, or whatever the path asks for."""
    path = event["rawPath"]
    if path.endswith("/raise"):
        return Invocation("r", error={"errorMessage": "boom", "errorType": "RuntimeError"})
    if path.endswith("/plain"):
        return Invocation("r", result={"just": "a dict"})
    if path.endswith("/binary"):
        return Invocation(
            "r",
            result={
                "statusCode": 201,
                "headers": {"content-type": "image/png"},
                "body": base64.b64encode(b"\x89PNG\x00\x01").decode(),
                "isBase64Encoded": True,
            },
        )
    return Invocation(
        "r",
        result={
            "statusCode": 200,
            "headers": {"x-function": function},
            "cookies": ["session=1; HttpOnly", "theme=dark"],
            "body": json.dumps(event),
        },
    )


@pytest.fixture(scope="module")
def gateway() -> Iterator[ApiGateway]:
    routes = sorted(
        [
            Route.of("POST", "/v1/items/{item_id}/notes/{note_id}", "NotesFunction"),
            Route.of("GET", "/v1/items/special", "SpecialFunction"),
            Route.of("GET", "/v1/items/{item_id}", "ItemsFunction"),
            Route.of("ANY", "/files/{proxy+}", "FilesFunction"),
        ],
        key=lambda r: r.specificity,
    )
    api = ApiGateway(routes, echo, API, port=0).start()
    yield api
    api.stop()


def send(
    gateway: ApiGateway, method: str, target: str, headers: list[tuple[str, str]], body: bytes = b""
) -> Any:
    host, port = gateway.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.putrequest(method, target, skip_accept_encoding=True)
    for name, value in headers:
        connection.putheader(name, value)
    connection.putheader("Content-Length", str(len(body)))
    connection.endheaders(body)
    response = connection.getresponse()
    payload = response.read()
    connection.close()
    return response, payload


def test_event_has_the_v2_shape_with_path_query_headers_and_cookies(gateway: ApiGateway) -> None:
    response, payload = send(
        gateway,
        "POST",
        "/v1/items/it%2042/notes/n-7?tag=a&tag=b&empty=&q=%C3%A9t%C3%A9",
        [
            ("Content-Type", "application/json"),
            ("X-Trace", "one"),
            ("X-Trace", "two"),
            ("Cookie", "session=abc; theme=light"),
            ("User-Agent", "checkout/1.0"),
        ],
        b'{"note": "hi"}',
    )
    assert response.status == 200
    event = json.loads(payload)
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /v1/items/{item_id}/notes/{note_id}"
    assert event["rawPath"] == "/v1/items/it 42/notes/n-7"  # decoded, as API Gateway does
    assert event["rawQueryString"] == "tag=a&tag=b&empty=&q=%C3%A9t%C3%A9"
    assert event["queryStringParameters"] == {"tag": "a,b", "empty": "", "q": "été"}
    assert event["pathParameters"] == {"item_id": "it 42", "note_id": "n-7"}
    assert event["headers"]["x-trace"] == "one,two"
    assert event["headers"]["content-type"] == "application/json"
    assert "cookie" not in event["headers"]
    assert event["cookies"] == ["session=abc", "theme=light"]
    assert event["body"] == '{"note": "hi"}'
    assert event["isBase64Encoded"] is False
    assert "stageVariables" not in event
    context = event["requestContext"]
    assert context["http"] == {
        "method": "POST",
        "path": "/v1/items/it 42/notes/n-7",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "checkout/1.0",
    }
    assert context["stage"] == "$default"
    assert context["routeKey"] == event["routeKey"]
    assert (context["accountId"], context["apiId"], context["domainPrefix"]) == (
        "123456789012",
        "abc123",
        "abc123",
    )
    assert context["domainName"] == "abc123.execute-api.eu-central-1.amazonaws.com"
    assert isinstance(context["timeEpoch"], int) and context["requestId"]
    # The function's response: its headers, one Set-Cookie per cookie.
    assert response.getheader("x-function") == "NotesFunction"
    assert response.headers.get_all("set-cookie") == ["session=1; HttpOnly", "theme=dark"]


def test_binary_body_is_base64_encoded_and_absent_parts_are_left_out(gateway: ApiGateway) -> None:
    blob = bytes(range(256))
    _, payload = send(
        gateway, "PUT", "/files/a/b/c.bin", [("Content-Type", "application/octet-stream")], blob
    )
    event = json.loads(payload)
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == blob
    assert event["routeKey"] == "ANY /files/{proxy+}"
    assert event["pathParameters"] == {"proxy": "a/b/c.bin"}
    assert "queryStringParameters" not in event
    assert "cookies" not in event
    _, payload = send(gateway, "GET", "/v1/items/special", [])
    event = json.loads(payload)
    assert event["routeKey"] == "GET /v1/items/special"  # an exact path wins over a variable one
    assert "pathParameters" not in event and "body" not in event


def test_responses_are_mapped_as_api_gateway_does(gateway: ApiGateway) -> None:
    response, payload = send(gateway, "GET", "/v1/items/plain", [])
    assert (response.status, json.loads(payload)) == (200, {"just": "a dict"})
    assert response.getheader("content-type") == "application/json"
    response, payload = send(gateway, "GET", "/v1/items/binary", [])
    assert (response.status, payload) == (201, b"\x89PNG\x00\x01")
    assert response.getheader("content-type") == "image/png"
    response, payload = send(gateway, "GET", "/v1/items/raise", [])
    assert (response.status, json.loads(payload)) == (500, {"message": "Internal Server Error"})
    response, payload = send(gateway, "GET", "/nowhere", [])
    assert (response.status, json.loads(payload)) == (404, {"message": "Not Found"})
    response, payload = send(gateway, "DELETE", "/v1/items/special", [])
    assert response.status == 404


# --- authorization, as API Gateway applies the template's rules ------------------------------------


@pytest.fixture(scope="module")
def guarded() -> Iterator[ApiGateway]:
    routes = sorted(
        [
            Route.of("POST", "/v1/signed/{item_id}", "SignedFunction", "AWS_IAM"),
            Route.of("GET", "/v1/token", "TokenFunction", "JWT"),
            Route.of("GET", "/v1/open", "OpenFunction"),
        ],
        key=lambda r: r.specificity,
    )
    api = ApiGateway(routes, echo, API, port=0).start()
    yield api
    api.stop()


def signed_send(
    gateway: ApiGateway,
    target: str,
    body: bytes = b'{"a": 1}',
    credentials: Credentials = LOCAL_CREDENTIALS,
    region: str = API.region,
    sent_body: bytes | None = None,
) -> Any:
    headers = sign(
        "POST",
        gateway.url + target,
        body,
        {"content-type": "application/json"},
        region=region,
        credentials=credentials,
    )
    return send(gateway, "POST", target, list(headers.items()), body if sent_body is None else sent_body)


def test_iam_routes_take_only_requests_signed_by_a_known_key(guarded: ApiGateway) -> None:
    response, payload = signed_send(guarded, "/v1/signed/it%2042?x=1&a=b")
    assert response.status == 200
    event = json.loads(payload)
    assert event["pathParameters"] == {"item_id": "it 42"}
    caller = event["requestContext"]["authorizer"]["iam"]
    assert (caller["accessKey"], caller["accountId"]) == ("testing", API.account_id)
    assert caller["userArn"] == f"arn:aws:iam::{API.account_id}:user/testing"
    # unsigned: API Gateway's 403, the function never runs
    response, payload = send(guarded, "POST", "/v1/signed/1", [("content-type", "application/json")], b"{}")
    assert (response.status, json.loads(payload)) == (403, {"message": "Forbidden"})
    # wrong secret, unknown key, wrong region, a body changed after signing
    for denied, message in [
        (signed_send(guarded, "/v1/signed/1", credentials=Credentials("testing", "wrong")), "signature"),
        (signed_send(guarded, "/v1/signed/1", credentials=Credentials("AKIDUNKNOWN", "x")), "token"),
        (signed_send(guarded, "/v1/signed/1", region="us-east-1"), "signature"),
        (signed_send(guarded, "/v1/signed/1", sent_body=b'{"a": 2}'), "signature"),
    ]:
        response, payload = denied
        assert response.status == 403
        assert message in json.loads(payload)["message"]


def test_a_signature_older_than_five_minutes_is_refused(guarded: ApiGateway) -> None:
    host = guarded.url.removeprefix("http://")
    headers = [
        ("host", host),
        *sign("POST", guarded.url + "/v1/signed/1", b"{}", {}, region=API.region).items(),
    ]
    old = datetime.now(UTC) - timedelta(minutes=6)
    assert guarded.verifier.check("POST", "/v1/signed/1", headers, b"{}") is None
    denied = guarded.verifier.check("POST", "/v1/signed/1", headers, b"{}", now=old)
    assert denied is not None and denied.status == 403 and "expired" in denied.message


def test_jwt_routes_want_a_bearer_token_and_open_routes_want_nothing(guarded: ApiGateway) -> None:
    response, payload = send(guarded, "GET", "/v1/token", [])
    assert (response.status, json.loads(payload)) == (401, {"message": "Unauthorized"})
    claims = base64.urlsafe_b64encode(json.dumps({"sub": "checkout-7"}).encode()).decode().rstrip("=")
    response, payload = send(
        guarded, "GET", "/v1/token", [("Authorization", f"Bearer eyJhbGciOiJub25lIn0.{claims}.")]
    )
    assert response.status == 200
    assert json.loads(payload)["requestContext"]["authorizer"]["jwt"]["claims"] == {"sub": "checkout-7"}
    assert send(guarded, "GET", "/v1/token", [("Authorization", "Bearer not-a-jwt")])[0].status == 200
    assert send(guarded, "GET", "/v1/open", [])[0].status == 200


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_aws_sigv4_is_accepted(guarded: ApiGateway) -> None:
    key, secret = LOCAL_CREDENTIALS.access_key, LOCAL_CREDENTIALS.secret_key
    command = [
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--aws-sigv4",
        f"aws:amz:{API.region}:execute-api",
    ]
    command += ["--user", f"{key}:{secret}", "-H", "content-type: application/json", "-d", '{"a": 1}']
    assert (
        subprocess.run(
            [*command, guarded.url + "/v1/signed/7"], capture_output=True, text=True, check=True
        ).stdout
        == "200"
    )
    command[command.index(f"{key}:{secret}")] = f"{key}:wrong"
    assert (
        subprocess.run(
            [*command, guarded.url + "/v1/signed/7"], capture_output=True, text=True, check=True
        ).stdout
        == "403"
    )


def test_sixty_four_clients_connecting_at_once_are_all_served(gateway: ApiGateway) -> None:
    host, port = gateway.url.removeprefix("http://").split(":")
    statuses: list[int] = []
    start = threading.Barrier(64)

    def client() -> None:
        start.wait()
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            connection.request("GET", "/v1/items/special")
            statuses.append(connection.getresponse().status)
        finally:
            connection.close()

    threads = [threading.Thread(target=client) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 64


def test_dozor_call_sends_a_signed_request(guarded: ApiGateway, tmp_path: Any, capsys: Any) -> None:
    body = tmp_path / "order.json"
    body.write_text('{"a": 1}')
    parser = argparse.ArgumentParser()
    configure_call(parser)
    args = parser.parse_args(["POST", "/v1/signed/9", "--data", f"@{body}", "--url", guarded.url])
    assert args.run(args) == 0
    event = json.loads(capsys.readouterr().out)
    assert (event["body"], event["requestContext"]["authorizer"]["iam"]["accessKey"]) == (
        '{"a": 1}',
        "testing",
    )
    args = parser.parse_args(["POST", "/v1/signed/9", "--url", guarded.url, "--region", "us-east-1"])
    assert args.run(args) == 1  # signed for another region: 403
