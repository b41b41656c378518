"""Bad HTTP requests: thousands of generated ones (bad JSON, wrong types, path
tricks, bad query values, unknown models and versions, wrong methods) are all
answered 4xx with a JSON message naming the field, never 5xx; huge bodies get
413; the server keeps serving and logs no unhandled error."""

from __future__ import annotations

import http.client
import json
import random
import socket
import time

import pytest

from .conftest import call

SEED = 20240613
CASES = 2400
# Routes that take a model name: every one gets the path tricks.
MODEL_PATHS = [
    "/v1/models/{}",
    "/v1/models/{}/sample.png",
    "/v1/models/{}/sample.npy",
    "/v1/models/{}/interpolate.png",
    "/v2/models/{}",
    "/v2/models/{}/ready",
    "/v2/models/{}/versions/1",
]
BAD_NAMES = [
    "..%2F..%2Fetc",
    "..%2F..%2Fetc%2Fpasswd",
    "%2e%2e",
    "%2e%2e%2f%2e%2e%2fmodels",
    "dcgan%00",
    "%00",
    "nope",
    "DCGAN",
    "dcgan%20",
    "%E2%80%AEgan",
    "%ff%fe",
    "a" * 300,
    "dcgan;rm%20-rf",
    "dcgan%3Fn%3D1",
    "%252e%252e",
    "dcgan:1",
]
QUERY_PARAMS = {
    "sample.png": ["n", "seed", "digit", "label", "category", "code", "first_index", "version", "cols", "scale"],
    "interpolate.png": [
        "seed_a",
        "seed_b",
        "steps",
        "method",
        "digit",
        "label",
        "category",
        "code",
        "version",
        "scale",
    ],
}
BAD_NUMBERS = [
    "",
    "abc",
    "-1",
    "1.5",
    "1e3",
    "0x10",
    "nan",
    "inf",
    "99999999999999999999999",
    "18446744073709551616",
    "%20",
    "%F0%9F%98%80",
    "1,2",
    "+3",
    "%207",
    "%EF%BC%97",  # a fullwidth 7
    "0" * 30,
]
BAD_VALUES = {
    "n": BAD_NUMBERS + ["0", "4097", "100000"],
    "seed": BAD_NUMBERS,
    "seed_a": BAD_NUMBERS,
    "seed_b": BAD_NUMBERS,
    "first_index": BAD_NUMBERS + ["18446744073709551615"],
    "steps": BAD_NUMBERS + ["0", "1", "4097"],
    "digit": BAD_NUMBERS[1:] + ["10", "-3", "2147483648"],
    "category": BAD_NUMBERS[1:] + ["10", "-1", "2147483648"],
    "cols": BAD_NUMBERS + ["0"],
    "scale": BAD_NUMBERS + ["0", "17", "1000"],
    "code": ["nan", "inf", "-inf", "a,b", "1,,2", "", "1e999", "0.1,0.2,0.3", "0.1", "%00"],
    "label": ["nope", "%00", "7" * 200, "", "%2F"],
    "method": ["", "cubic", "LERP", "%00"],
    "version": ["99", "..", "%2e%2e", "1%00", "latest"],
}
DATATYPES = ["UINT64", "INT32", "FP32", "INT64", "BYTES", "BOOL", "", "uint64", 7, None]
VALID_BODY = {
    "id": "x",
    "inputs": [
        {"name": "seed", "shape": [1], "datatype": "UINT64", "data": [3]},
        {"name": "count", "shape": [1], "datatype": "INT32", "data": [2]},
    ],
    "outputs": [{"name": "images"}],
}
JUNK = [None, True, -1, 1.5, "x", [], {}, [[[]]], {"a": 1}, 2**70, float("nan"), "\u0000", ["seed"]]
# Values each top-level field must not have (an empty inputs list is valid: one image of seed 0).
WRONG = {
    "inputs": [j for j in JUNK if j != []],
    "outputs": [j for j in JUNK if j != []],
    "id": [True, -1, 1.5, [], {}, 2**70],
    "parameters": [None, True, -1, "x", [], 2**70, {"binary_data_output": "yes"}],
}


def _bad_query(rng: random.Random) -> str:
    kind = rng.choice(list(QUERY_PARAMS))
    model = rng.choice(["dcgan", "cgan", "infogan", "cgan-fashion"])
    name = rng.choice(QUERY_PARAMS[kind])
    value = rng.choice(BAD_VALUES[name])
    pairs = [f"{name}={value}"]
    if rng.random() < 0.2:
        pairs.append(f"{name}={value or 1}")  # repeated
    if rng.random() < 0.15:
        pairs.append(f"{rng.choice(['count', 'x', 'seed[]', '%00', 'continuous'])}=1")  # unknown
    if name in ("digit", "label", "category") and rng.random() < 0.3:
        pairs.append("digit=1&category=2")  # more than one condition
    if kind == "interpolate.png" and model in ("cgan", "cgan-fashion") and rng.random() < 0.3:
        pairs = ["seed_a=1"]  # a conditional model without a class
    rng.shuffle(pairs)
    return f"/v1/models/{model}/{kind}?" + "&".join(pairs)


def _bad_body(rng: random.Random) -> tuple[bytes, dict[str, str]]:
    body = json.loads(json.dumps(VALID_BODY))
    headers: dict[str, str] = {"Content-Type": "application/json"}
    choice = rng.randrange(13)
    if choice == 0:  # not JSON at all, or cut short
        text = json.dumps(body)
        return text[: rng.randrange(len(text))].encode() or b"{", headers
    if choice == 1:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))), headers
    if choice == 2:  # a JSON value that is not an object
        return json.dumps(rng.choice([[], 1, "x", None, True, [body]])).encode(), headers
    if choice == 3:  # a field of the wrong type
        key = rng.choice(["inputs", "outputs", "id", "parameters"])
        body[key] = rng.choice(WRONG[key])
    elif choice == 4:  # an input's field of the wrong type or value
        item = body["inputs"][rng.randrange(2)]
        key = rng.choice(["name", "shape", "datatype", "data", "parameters"])
        wrong = {
            "name": [None, True, -1, [], {}, "", "temperature", "SEED", "seed\u0000"],
            "shape": [None, "1", 1, {}, [1.0], [True], ["1"], [None]],
            "datatype": [d for d in DATATYPES if d not in ("UINT64", "INT32")]
            + ["INT32" if item["name"] == "seed" else "UINT64"],
            "data": [None, "x", {}, [], [[]], ["1"], [None], [{}]],
            "parameters": [None, 1, "x", [], {"shared_memory_region": "r"}, {"binary_data_size": "8"}],
        }[key]
        item[key] = rng.choice(wrong)
    elif choice == 5:  # shapes that do not fit the model's inputs or the data
        body["inputs"][rng.randrange(2)]["shape"] = rng.choice([[], [0], [2], [1, 1], [-1], [2**62], [1, 2**40]])
    elif choice == 6:  # values out of range or of the wrong kind
        item = body["inputs"][rng.randrange(2)]
        bad = [2**64, -1] if item["name"] == "seed" else [2**31, 0, -5]
        item["data"] = [rng.choice(bad + [1.5, "3", None, True, [1, 2], {}])]
    elif choice == 7:  # binary tensor extension: sizes that do not add up
        header = json.dumps(
            {
                "inputs": [
                    {
                        "name": "seed",
                        "shape": [1],
                        "datatype": "UINT64",
                        "parameters": {"binary_data_size": rng.choice([0, 4, 9, 100, -1, "8"])},
                    }
                ]
            }
        ).encode()
        extra = bytes(rng.randrange(0, 16))
        length = rng.choice([str(len(header)), str(len(header) + 100), "-1", "abc", "", str(len(header) - 1)])
        headers["Inference-Header-Content-Length"] = length
        return header + extra, headers
    elif choice == 8:  # deep nesting
        depth = rng.choice([3, 50, 5000, 100_000])
        return (
            '{"inputs":[{"name":"seed","shape":[1],"datatype":"UINT64","data":'
            + "[" * depth
            + "1"
            + "]" * depth
            + "}]}"
        ).encode(), headers
    elif choice == 9:  # outputs that do not exist or options not supported
        body["outputs"] = [
            rng.choice(
                [
                    {"name": "probabilities"},
                    {"name": ""},
                    {"name": "images", "parameters": {"classification": 3}},
                    {"name": "images", "parameters": {"shared_memory_region": "r"}},
                    {"name": "images", "parameters": {"binary_data": "yes"}},
                ]
            )
        ]
    elif choice == 10:  # conditioning out of range for every model, or of the wrong datatype
        name, value = rng.choice([("digit", 11), ("category", -1), ("label", 10_000), ("continuous", 1)])
        body["inputs"].append({"name": name, "shape": [1], "datatype": "INT32", "data": [value]})
    elif choice == 11:  # FP32 values that are not finite floats: huge integers, NaN, inf, strings
        value = rng.choice([10**400, -(10**60), 1e39, float("nan"), float("inf"), "1.0", None])
        body["inputs"] = [{"name": "latent", "shape": [1, 100], "datatype": "FP32", "data": [value] * 100}]
    else:  # a lot of data for a small tensor
        body["inputs"][0]["data"] = list(range(rng.randrange(2, 5000)))
    return json.dumps(body).encode(), headers


def _bad_request(rng: random.Random) -> tuple[str, str, bytes | None, dict[str, str]]:
    kind = rng.randrange(10)
    if kind < 4:
        return "GET", _bad_query(rng), None, {}
    if kind < 7:
        model = rng.choice(["dcgan", "dcgan", "cgan", "infogan"])
        path = rng.choice([f"/v2/models/{model}/infer", f"/v2/models/{model}/versions/1/infer"])
        body, headers = _bad_body(rng)
        return "POST", path, body, headers
    if kind < 9:
        name = rng.choice(BAD_NAMES)
        path = rng.choice(MODEL_PATHS).format(name)
        if rng.random() < 0.3:
            path = f"/v2/models/dcgan/versions/{rng.choice(['99', '%2e%2e', '..%2F1', '0', '01'])}"
        if path.endswith("/infer") or rng.random() < 0.2:
            return "POST", f"/v2/models/{name}/infer", json.dumps(VALID_BODY).encode(), {}
        return "GET", path, None, {}
    method, path = rng.choice(
        [
            ("POST", "/v1/models"),
            ("PUT", "/v2/models/dcgan/infer"),
            ("DELETE", "/v1/models/dcgan/sample.png"),
            ("GET", "/v2/models/dcgan/infer"),
            ("GET", "/v3"),
            ("GET", "/static/../../etc/passwd"),
            ("GET", "/static/%2e%2e/%2e%2e/etc/passwd"),
            ("GET", "/v1/models/dcgan/sample.gif"),
            ("PATCH", "/"),
            ("GET", "/v2/models"),
        ]
    )
    return method, path, None, {}


def _check(status: int, content_type: str, body: bytes, what: str) -> None:
    assert 400 <= status < 500, f"{what}: {status} {body[:300]!r}"
    assert content_type.startswith("application/json"), f"{what}: {content_type} {body[:200]!r}"
    doc = json.loads(body)
    message = doc["error"]
    assert isinstance(message, str) and message, what
    if status == 400:
        assert doc.get("field") and message.startswith(doc["field"] + ": "), f"{what}: {message}"
    elif status == 404:
        assert message.startswith("path: ") or "not found" in message, f"{what}: {message}"
    else:
        assert message.split(":", 1)[0] in ("method", "body", "request"), f"{what}: {message}"


def test_thousands_of_bad_requests_are_4xx_with_a_json_message_naming_the_field(http_server) -> None:
    rng = random.Random(SEED)
    host, port = http_server.http_address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    statuses: dict[int, int] = {}
    started = time.monotonic()
    for i in range(CASES):
        method, path, body, headers = _bad_request(rng)
        what = f"case {i}: {method} {path[:200]} {(body or b'')[:200]!r} {headers}"
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except (http.client.HTTPException, OSError):
            conn.close()  # the server may close after refusing a body; one retry on a fresh connection
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        _check(response.status, response.headers.get("Content-Type", ""), data, what)
        statuses[response.status] = statuses.get(response.status, 0) + 1
        if response.headers.get("Connection", "").lower() == "close":
            conn.close()
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.close()
    elapsed = time.monotonic() - started
    assert elapsed < 120, f"{CASES} bad requests took {elapsed:.0f} s"
    assert set(statuses) <= {400, 404, 405, 409, 413}, statuses
    assert statuses.get(400, 0) > CASES // 3 and statuses.get(404, 0) > 50 and statuses.get(405, 0) > 10, statuses
    # still serving, and nothing went to the catch-all
    assert call(http_server.http_url + "/v2/health/live").status == 200
    ok = call(http_server.http_url + "/v1/models/dcgan/sample.npy?n=2&seed=1")
    assert ok.status == 200 and len(ok.body) > 2 * 784
    assert http_server.process.poll() is None
    assert "unhandled error" not in http_server.log()


def _raw(address: str, request: bytes, timeout: float = 10) -> bytes:
    """Send raw bytes; the server's answer, read until it closes or goes quiet."""
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                if b"\r\n\r\n" in b"".join(chunks) and b'"error"' in b"".join(chunks):
                    break
        except TimeoutError:
            pass
    return b"".join(chunks)


def test_a_body_over_the_limit_is_413_before_it_is_read(http_server) -> None:
    # Content-Length over the limit (16 MiB by default): refused on the headers; the body is never sent.
    answer = _raw(
        http_server.http_address,
        b"POST /v2/models/dcgan/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100000000\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"error":"body: 100000000 bytes is over this server\'s limit of 16777216 bytes"' in answer


def test_a_chunked_body_over_the_limit_is_413(bundled_models, tmp_path) -> None:
    from ..conftest import start_server, stop_server

    srv = start_server(bundled_models, tmp_path / "log", "--http-port", "0", "--max-message-mb", "1")
    try:

        def chunks():
            for _ in range(40):
                yield b"[" * 50_000  # 2 MB in all, over the 1 MiB limit

        host, port = srv.http_address.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            conn.request("POST", "/v2/models/dcgan/infer", body=chunks(), encode_chunked=True)
            response = conn.getresponse()
            status, data = response.status, response.read()
        except (BrokenPipeError, ConnectionResetError):
            pytest.fail("the server closed the connection without an answer")
        finally:
            conn.close()
        assert status == 413, data
        assert json.loads(data)["error"] == "body: is over this server's limit of 1048576 bytes"
        # a response over the (same) limit is refused before work, naming the field
        reply = call(f"{srv.http_url}/v1/models/dcgan/sample.npy?n=2000")
        assert reply.status == 400 and reply.json()["error"].startswith("n: ")
        assert call(f"{srv.http_url}/v1/models/dcgan/sample.npy?n=1000").status == 200
    finally:
        assert stop_server(srv) == 0


def test_overlong_request_lines_are_4xx(http_server) -> None:
    # aiohttp's parser answers these itself (plain text), before any route: still a 4xx, never a crash.
    answer = _raw(http_server.http_address, b"GET /v1/models/" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer[:12] in (b"HTTP/1.1 400", b"HTTP/1.1 414", b"HTTP/1.0 400"), answer[:200]
    answer = _raw(http_server.http_address, b"GARBAGE\r\n\r\n")
    assert answer[:12] in (b"HTTP/1.1 400", b"HTTP/1.0 400"), answer[:200]
    assert call(http_server.http_url + "/v2/health/live").status == 200
