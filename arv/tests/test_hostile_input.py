"""Hostile input against the whole API: every bad request gets a clear JSON error and changes nothing.

API.md: errors are JSON with a `detail` key (422: a list of `{loc, msg, type}`), client
input never produces a 500, and a request that fails leaves nothing of its writes behind.
Each case below sends one bad request through the real uvicorn to the real database and
compares every row of companies, storage connections and folders before and after.

Decisions this file pins down where API.md leaves them open:
- a body whose Content-Type is not JSON (text/plain, form-encoded, multipart, none) is
  415 Unsupported Media Type, as Django REST framework answers it;
- a body that is not UTF-8 (including UTF-16 with a byte-order mark), or that uses the
  non-JSON constants NaN / Infinity, is 400 like any other body that is not valid JSON;
- a JSON string holding a lone surrogate (\\ud800), which no UTF-8 text can store, is 422.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlencode

import httpx
import pytest
from django.conf import settings

from companies.models import Company
from storage.models import StorageConnection, StorageFolder

pytestmark = pytest.mark.django_db(transaction=True)

NUL = "\u0000"
TOO_BIG = 10**40
BEYOND_BIGINT = 2**63
LONG_ID = "99999999999999999999999"

# Every write endpoint, with a body it accepts: each hostile case changes one thing in it,
# so a request that got through would really write.
WRITES = {
    "create company": ("POST", "/api/companies", {"name": "Fresh Co"}),
    "update company": ("PATCH", "/api/companies/{company}", {"name": "Renamed Co"}),
    "set storage": ("PUT", "/api/companies/{company}/storage", {"storage_connection_id": "{connection}"}),
    "create folder": ("POST", "/api/companies/{company}/folders", {"name": "New", "path": "/new"}),
    "create connection": (
        "POST",
        "/api/storage/connections",
        {"name": "New disk", "provider": "local_disk", "base_path": "{disk}"},
    ),
    "update connection": ("PATCH", "/api/storage/connections/{connection}", {"name": "Renamed disk"}),
}


@pytest.fixture
def world(make_company, tmp_path):
    """One of each object, so updates have a target: {"company": id, "connection": id, "disk": path}."""
    connection = StorageConnection.objects.create(name="Target disk", provider="local_disk", base_path=str(tmp_path))
    company = make_company("Target Co", storage_connection=connection, metadata={"keep": "me"})
    StorageFolder.objects.create(company=company, name="Existing", path="/existing")
    # "disk": a directory a local_disk connection may name (inside ARV_LOCAL_STORAGE_ROOTS).
    return {"company": company.id, "connection": connection.id, "disk": str(tmp_path)}


def snapshot() -> dict[str, list[dict]]:
    """Every row of the three tables, every column."""
    return {
        model.__name__: list(model.objects.order_by("pk").values())
        for model in (Company, StorageConnection, StorageFolder)
    }


@contextmanager
def database_unchanged() -> Iterator[None]:
    """The block must leave every row of the three tables as it found it."""
    before = snapshot()
    yield
    assert snapshot() == before


def fill(template, world: dict[str, int]):
    """Put the world's ids into a path or body ("{company}" -> 7)."""
    if isinstance(template, str):
        if template in ("{company}", "{connection}"):
            return world[template[1:-1]]
        return template.format(**world)
    if isinstance(template, dict):
        return {key: fill(value, world) for key, value in template.items()}
    return template


def assert_json_error(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text[:2000]
    assert response.headers["Content-Type"].startswith("application/json"), response.headers["Content-Type"]
    body = response.json()
    assert isinstance(body, dict) and "detail" in body, body
    if status == 422:
        assert isinstance(body["detail"], list) and body["detail"], body
        assert all({"loc", "msg", "type"} <= set(error) for error in body["detail"]), body


def valid_body(endpoint: str, world) -> dict:
    return fill(WRITES[endpoint][2], world)


def send_write(staff: httpx.Client, world, endpoint: str, changes: dict) -> httpx.Response:
    """The endpoint's valid body with `changes`, as ASCII JSON (lone surrogates travel as \\u escapes)."""
    method, path, _ = WRITES[endpoint]
    raw = json.dumps({**valid_body(endpoint, world), **changes}).encode()
    return staff.request(method, fill(path, world), content=raw, headers={"Content-Type": "application/json"})


def case(endpoint: str, changes: dict):
    """One parametrize line: an endpoint and what is changed in its valid body."""
    return pytest.param(endpoint, changes, id=f"{endpoint}: {json.dumps(changes)[:60]}")


def deep_json(depth: int) -> str:
    """A metadata value `depth` lists deep, built as text (json.dumps itself would recurse)."""
    return '{"name": "Deep Co", "metadata": {"deep": ' + "[" * depth + "0" + "]" * depth + "}}"


# --- NUL characters: PostgreSQL cannot store them in text or jsonb -> 422, never 500 --------------


@pytest.mark.parametrize(
    "endpoint, changes",
    [
        case("create company", {"name": f"Nul{NUL}Co"}),
        case("create company", {"name": NUL}),
        case("create company", {"contact_email": f"a{NUL}@example.com"}),
        case("create company", {"contact_phone": f"+1{NUL}"}),
        case("create company", {"telegram_chat_id": f"{NUL}42"}),
        case("create company", {"storage_path": f"/data/{NUL}"}),
        case("create company", {"subscription_tier": f"pro{NUL}"}),
        case("create company", {"subscription_expires_at": f"2030-01-01T00:00:00Z{NUL}"}),
        case("create company", {"notes": f"line{NUL}"}),
        case("create company", {"metadata": {f"key{NUL}": "v"}}),
        case("create company", {"metadata": {"key": f"value{NUL}"}}),
        case("create company", {"metadata": {"a": {"b": {f"c{NUL}": 1}}}}),
        case("create company", {"metadata": {"a": [1, {"b": [f"{NUL}"]}]}}),
        case("update company", {"name": f"Nul{NUL}"}),
        case("update company", {"contact_phone": NUL}),
        case("update company", {"notes": NUL}),
        case("update company", {"storage_path": NUL}),
        case("update company", {"metadata": {NUL: NUL}}),
        case("update company", {"metadata": {"list": [[[NUL]]]}}),
        case("set storage", {"storage_path": f"/nul{NUL}"}),
        case("create folder", {"name": f"Nul{NUL}"}),
        case("create folder", {"path": f"/nul{NUL}"}),
        case("create folder", {"folder_type": f"custom{NUL}"}),
        case("create connection", {"name": f"Nul{NUL}"}),
        case("create connection", {"provider": f"local_disk{NUL}"}),
        case("create connection", {"base_path": f"/tmp{NUL}"}),
        case("create connection", {"credentials": {"token": NUL}}),
        case("create connection", {"credentials": {NUL: "secret"}}),
        case("create connection", {"metadata": {"nested": {"deeper": [NUL]}}}),
        case("update connection", {"name": NUL}),
        case("update connection", {"base_path": f"/{NUL}"}),
        case("update connection", {"credentials": {"a": {"b": NUL}}}),
        case("update connection", {"metadata": {f"{NUL}": {}}}),
    ],
)
def test_nul_characters_in_a_body_are_422_and_write_nothing(staff, world, endpoint, changes):
    with database_unchanged():
        assert_json_error(send_write(staff, world, endpoint, changes), 422)


@pytest.mark.parametrize(
    "method, path, params",
    [
        ("GET", "/api/companies", {"search": f"a{NUL}b"}),
        ("GET", "/api/companies", {"search": NUL}),
        ("GET", "/api/companies", {"is_active": f"true{NUL}"}),
        ("GET", "/api/companies", {"page": f"1{NUL}"}),
        ("GET", "/api/companies", {"page_size": f"{NUL}20"}),
        ("GET", "/api/storage/connections", {"is_active": f"{NUL}"}),
        ("GET", "/api/companies/1%00", {}),
        ("GET", "/api/companies/%00", {}),
        ("PATCH", "/api/companies/%00", {}),
        ("DELETE", "/api/companies/{company}%00", {}),
        ("PUT", "/api/companies/%00/storage", {}),
        ("GET", "/api/companies/%00/folders", {}),
        ("POST", "/api/companies/{company}%00/folders", {}),
        ("GET", "/api/storage/connections/%00", {}),
        ("PATCH", "/api/storage/connections/{connection}%00", {}),
        ("DELETE", "/api/storage/connections/{connection}%00", {}),
        ("POST", "/api/storage/connections/%00/test", {}),
        ("GET", "/api/storage/connections/%00/stats", {}),
    ],
)
def test_nul_characters_in_the_query_or_path_are_422(staff, world, method, path, params):
    before = snapshot()
    body = {"name": "Via Nul", "path": "/via-nul"} if method in ("POST", "PATCH", "PUT") else None
    if method == "PUT":
        body = {"storage_connection_id": world["connection"]}
    response = staff.request(method, fill(path, world), params=params, json=body)
    assert_json_error(response, 422)
    assert snapshot() == before


# --- bodies that are not JSON objects, or not JSON at all -> 400 --------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"name": "\xff\xfe Co"}', id="invalid utf-8 byte"),
        pytest.param(b'{"name": "\xc3\x28 Co"}', id="broken two-byte sequence"),
        pytest.param(b'{"name": "\xed\xa0\x80 Co"}', id="utf-8 encoded surrogate"),
        pytest.param(b'{"name": "\xc0\xaf Co"}', id="overlong encoding"),
        pytest.param(
            b'{"name": "Meta Co", "metadata": {"k": "\xed\xa0\x80"}}', id="utf-8 encoded surrogate in metadata"
        ),
        pytest.param(b'{"name": "Latin \xe9 Co"}', id="latin-1 text"),
        pytest.param('{"name": "Utf16 Co"}'.encode("utf-16"), id="utf-16 with BOM (not UTF-8)"),
        pytest.param(b"[]", id="empty list"),
        pytest.param(b'[{"name": "In A List"}]', id="list of objects"),
        pytest.param(b'"a string"', id="string"),
        pytest.param(b"42", id="number"),
        pytest.param(b"1.5", id="float"),
        pytest.param(b"null", id="null"),
        pytest.param(b"true", id="true"),
        pytest.param(b"{not json", id="syntax error"),
        pytest.param(b'{"name": "Trailing Co"} {}', id="trailing data"),
        pytest.param(b'{"name": "Nan Co", "metadata": {"x": NaN}}', id="NaN (not JSON)"),
        pytest.param(b'{"name": "Inf Co", "metadata": {"x": Infinity}}', id="Infinity (not JSON)"),
        pytest.param(b'{"name": "Inf Co", "metadata": {"x": -Infinity}}', id="-Infinity (not JSON)"),
        pytest.param(b'{"name": "Quota Co", "storage_quota_gb": NaN}', id="NaN for an integer"),
    ],
)
@pytest.mark.parametrize("endpoint", ["create company", "update company"])
def test_a_body_that_is_not_a_utf8_json_object_is_400_and_writes_nothing(staff, world, endpoint, raw):
    method, path, _ = WRITES[endpoint]
    before = snapshot()
    response = staff.request(method, fill(path, world), content=raw, headers={"Content-Type": "application/json"})
    assert_json_error(response, 400)
    assert snapshot() == before


@pytest.mark.parametrize(
    "endpoint, changes",
    [
        case("create company", {"name": "\ud800"}),
        case("create company", {"notes": "ok \udfff"}),
        case("create company", {"metadata": {"\ud83d": "half an emoji"}}),
        case("update company", {"contact_phone": "\ud800"}),
        case("create folder", {"path": "/\ud800"}),
        case("create connection", {"credentials": {"k": "\udc00"}}),
    ],
)
def test_a_lone_surrogate_is_422_and_writes_nothing(staff, world, endpoint, changes):
    with database_unchanged():
        assert_json_error(send_write(staff, world, endpoint, changes), 422)


# --- numbers the columns cannot hold, in bodies and paths -> 422 --------------------------------


@pytest.mark.parametrize(
    "endpoint, changes",
    [
        case("create company", {"storage_quota_gb": TOO_BIG}),
        case("create company", {"storage_quota_gb": -1}),
        case("create company", {"storage_quota_gb": 2**31}),
        case("create company", {"storage_quota_gb": 1.5}),
        case("create company", {"projects_limit": -TOO_BIG}),
        case("create company", {"storage_connection_id": TOO_BIG}),
        case("create company", {"storage_connection_id": BEYOND_BIGINT}),
        case("create company", {"storage_connection_id": 0}),
        case("update company", {"storage_quota_gb": TOO_BIG}),
        case("update company", {"projects_limit": 2**31}),
        case("update company", {"storage_connection_id": -1}),
        case("set storage", {"storage_connection_id": TOO_BIG}),
        case("set storage", {"storage_connection_id": BEYOND_BIGINT}),
        case("set storage", {"storage_connection_id": -1}),
        case("set storage", {"storage_connection_id": 2**63 - 1}),  # in range but missing: 422 (API.md)
    ],
)
def test_numbers_out_of_range_in_a_body_are_422_and_write_nothing(staff, world, endpoint, changes):
    with database_unchanged():
        assert_json_error(send_write(staff, world, endpoint, changes), 422)


@pytest.mark.parametrize(
    "endpoint, raw",
    [
        ("create company", b'{"name": "Float Co", "storage_quota_gb": 1e400}'),
        ("create company", b'{"name": "Float Co", "metadata": {"x": 1e400}}'),
        ("update company", b'{"metadata": {"x": [-1e400]}}'),
        ("create connection", b'{"name": "Float", "provider": "minio", "credentials": {"x": 1e999}}'),
    ],
)
def test_json_numbers_beyond_the_float_range_are_422_and_write_nothing(staff, world, endpoint, raw):
    """1e400 is valid JSON, but Python reads it as infinity, which no column or jsonb can hold."""
    method, path, _ = WRITES[endpoint]
    before = snapshot()
    response = staff.request(method, fill(path, world), content=raw, headers={"Content-Type": "application/json"})
    assert_json_error(response, 422)
    assert snapshot() == before


@pytest.mark.parametrize("bad_id", [LONG_ID, str(BEYOND_BIGINT), "0", "-1", "1.5", "1e3", "abc", "0x10"])
@pytest.mark.parametrize(
    "method, template",
    [
        ("GET", "/api/companies/{id}"),
        ("PATCH", "/api/companies/{id}"),
        ("DELETE", "/api/companies/{id}"),
        ("PUT", "/api/companies/{id}/storage"),
        ("GET", "/api/companies/{id}/folders"),
        ("POST", "/api/companies/{id}/folders"),
        ("GET", "/api/storage/connections/{id}"),
        ("PATCH", "/api/storage/connections/{id}"),
        ("DELETE", "/api/storage/connections/{id}"),
        ("POST", "/api/storage/connections/{id}/test"),
        ("GET", "/api/storage/connections/{id}/stats"),
    ],
)
def test_ids_out_of_range_or_not_integers_in_a_path_are_422(staff, world, method, template, bad_id):
    body = {"PATCH": {"notes": "x"}, "PUT": {"storage_connection_id": world["connection"]}}.get(method)
    if template.endswith("/folders") and method == "POST":
        body = {"name": "Bad Id", "path": "/bad-id"}
    with database_unchanged():
        assert_json_error(staff.request(method, template.format(id=bad_id), json=body), 422)


@pytest.mark.parametrize(
    "params",
    [
        {"page": 0},
        {"page": -1},
        {"page": -(10**30)},
        {"page": 2**31},
        {"page": "abc"},
        {"page": "1.5"},
        {"page": ""},
        {"page_size": 0},
        {"page_size": -20},
        {"page_size": 101},
        {"page_size": TOO_BIG},
        {"is_active": "maybe"},
        {"search": "x" * 256},
        {"search": "x" * 10_000},
    ],
    ids=lambda params: json.dumps(params)[:40],
)
def test_bad_list_parameters_are_422(staff, world, params):
    assert_json_error(staff.get("/api/companies", params=params), 422)


def test_a_search_of_the_longest_allowed_length_is_fine(staff, world):
    assert staff.get("/api/companies", params={"search": "x" * 255}).status_code == 200


# --- SQL and LIKE metacharacters in search: 200 and matched literally ---------------------------

SEARCHABLE = [
    "100% Pure",
    "1000 Pure",
    "snake_case Ltd",
    "snakeXcase Ltd",
    "Back\\Slash Co",
    "BackSlash Co",
    "O'Brien & Sons",
    "Robert'); DROP TABLE companies_company;--",
]


@pytest.mark.parametrize(
    "search, expected",
    [
        ("%", {"100% Pure"}),
        ("0%", {"100% Pure"}),
        ("%%", set()),
        ("_", {"snake_case Ltd", "Robert'); DROP TABLE companies_company;--"}),
        ("e_c", {"snake_case Ltd"}),
        ("__", set()),
        ("\\", {"Back\\Slash Co"}),
        ("k\\s", {"Back\\Slash Co"}),
        ("\\%", set()),
        ("\\_", set()),
        ("%_\\", set()),
        ("'", {"O'Brien & Sons", "Robert'); DROP TABLE companies_company;--"}),
        ("o'b", {"O'Brien & Sons"}),
        ("'; DROP TABLE companies_company;--", set()),
        ("'); DROP TABLE", {"Robert'); DROP TABLE companies_company;--"}),
        ("' OR '1'='1", set()),
        ('" OR ""="', set()),
        ("--", {"Robert'); DROP TABLE companies_company;--"}),
        ("*", set()),
        ("[a-z]", set()),
        ("^.*$", set()),
    ],
)
def test_search_matches_sql_and_like_metacharacters_literally(staff, make_company, search, expected):
    for i, name in enumerate(SEARCHABLE):
        make_company(name, slug=f"searchable-{i}")
    before = snapshot()
    response = staff.get("/api/companies", params={"search": search, "page_size": 100})
    assert response.status_code == 200, response.text
    assert {item["name"] for item in response.json()["items"]} == expected
    assert snapshot() == before


# --- Content-Type other than JSON -> 415 ------------------------------------------------------


def encode_as(kind: str, body: dict) -> bytes:
    """The endpoint's valid body in another format, so only the format is wrong."""
    if kind == "form":
        return urlencode(body).encode()
    if kind == "multipart":
        parts = [f'--b\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n' for k, v in body.items()]
        return ("".join(parts) + "--b--\r\n").encode()
    if kind == "xml":
        return ("<body>" + "".join(f"<{k}>{v}</{k}>" for k, v in body.items()) + "</body>").encode()
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    "content_type, kind",
    [
        pytest.param("text/plain", "json", id="text/plain holding JSON"),
        pytest.param("text/plain; charset=utf-8", "json", id="text/plain charset holding JSON"),
        pytest.param("application/x-www-form-urlencoded", "form", id="form-encoded"),
        pytest.param("application/x-www-form-urlencoded", "json", id="form content type holding JSON"),
        pytest.param("multipart/form-data; boundary=b", "multipart", id="multipart"),
        pytest.param("application/xml", "xml", id="xml"),
        pytest.param("application/jsonp", "json", id="application/jsonp holding JSON"),
        pytest.param(None, "json", id="no Content-Type holding JSON"),
    ],
)
@pytest.mark.parametrize("endpoint", list(WRITES))
def test_a_body_that_is_not_declared_json_is_415_and_writes_nothing(staff, world, endpoint, content_type, kind):
    method, path, _ = WRITES[endpoint]
    headers = {"Content-Type": content_type} if content_type else {}
    raw = encode_as(kind, valid_body(endpoint, world))
    with database_unchanged():
        assert_json_error(staff.request(method, fill(path, world), content=raw, headers=headers), 415)


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"])
def test_json_content_types_are_accepted(staff, content_type):
    body = json.dumps({"name": "Typed Co"}).encode()
    response = staff.post("/api/companies", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 201, response.text


# --- bodies over the configured limit -> 413 ----------------------------------------------------


def padded_body(size: int) -> bytes:
    """A valid JSON object (so only its size is wrong), padded with whitespace to `size` bytes."""
    head = b'{"name": "Big Co"'
    return head + b" " * (size - len(head) - 1) + b"}"


def chunks(data: bytes, size: int = 64 * 1024):
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.parametrize("chunked", [False, True], ids=["with Content-Length", "chunked"])
@pytest.mark.parametrize("endpoint", ["create company", "update company", "create connection"])
def test_a_body_over_the_limit_is_413_and_writes_nothing(staff, world, endpoint, chunked):
    method, path, _ = WRITES[endpoint]
    raw = padded_body(2 * settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    content = chunks(raw) if chunked else raw
    before = snapshot()
    response = staff.request(method, fill(path, world), content=content, headers={"Content-Type": "application/json"})
    if chunked:
        assert "Content-Length" not in response.request.headers
        assert response.request.headers["Transfer-Encoding"] == "chunked"
    assert_json_error(response, 413)
    assert snapshot() == before


def test_a_body_one_byte_over_the_limit_is_413_and_one_at_the_limit_is_read(staff):
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    headers = {"Content-Type": "application/json"}
    assert_json_error(staff.post("/api/companies", content=padded_body(limit + 1), headers=headers), 413)
    assert not Company.objects.filter(name="Big Co").exists()
    assert staff.post("/api/companies", content=padded_body(limit), headers=headers).status_code == 201


# --- fields that are not writable or do not exist -> 422 ----------------------------------------


@pytest.mark.parametrize(
    "endpoint, changes",
    [
        case("create company", {"unknown": 1}),
        case("create company", {"id": 12345}),
        case("create company", {"slug": "chosen"}),
        case("create company", {"is_default": True}),
        case("create company", {"storage_used_bytes": 1}),
        case("create company", {"folders_count": 3}),
        case("create company", {"created_at": "2020-01-01T00:00:00Z"}),
        case("create company", {"Name": "Case Matters"}),
        case("update company", {"unknown": None}),
        case("update company", {"slug": "renamed"}),
        case("update company", {"is_default": True}),
        case("update company", {"updated_at": "2020-01-01T00:00:00Z"}),
        case("set storage", {"storage_path": "/p", "name": "extra"}),
        case("create folder", {"company_id": 1}),
        case("create folder", {"files_count": 9}),
        case("create folder", {"total_size_bytes": 9}),
        case("create connection", {"companies_count": 0}),
        case("create connection", {"test_status": "success"}),
        case("create connection", {"last_tested_at": "2020-01-01T00:00:00Z"}),
        case("update connection", {"id": 1}),
        case("update connection", {"test_error": "none"}),
        case("update connection", {"": ""}),
    ],
)
def test_unknown_or_read_only_fields_are_422_and_write_nothing(staff, world, endpoint, changes):
    with database_unchanged():
        assert_json_error(send_write(staff, world, endpoint, changes), 422)


# --- deeply nested JSON -> 4xx, never 500 -------------------------------------------------------


@pytest.mark.parametrize("depth", [10_000, 100_000])
@pytest.mark.parametrize("endpoint", ["create company", "update company", "create connection"])
def test_deeply_nested_json_is_a_client_error_and_writes_nothing(staff, world, endpoint, depth):
    method, path, _ = WRITES[endpoint]
    raw = deep_json(depth)
    if endpoint == "create connection":
        raw = raw.replace('"name": "Deep Co"', '"name": "Deep", "provider": "minio"')
    before = snapshot()
    response = staff.request(method, fill(path, world), content=raw, headers={"Content-Type": "application/json"})
    assert 400 <= response.status_code < 500, response.text[:500]
    assert "detail" in response.json()
    assert snapshot() == before


@pytest.mark.parametrize("depth", [100, 500, 900, 990, 2_000])
def test_moderately_nested_metadata_is_stored_or_rejected_never_500(staff, depth):
    before = snapshot()
    raw = deep_json(depth)
    response = staff.post("/api/companies", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code in (201, 400, 422), response.text[:500]
    if response.status_code == 201:
        again = staff.get(f"/api/companies/{response.json()['id']}")
        assert again.status_code == 200, again.text[:500]
        assert "[" * depth + "0" + "]" * depth in again.text.replace(" ", "")
    else:
        assert "detail" in response.json()
        assert snapshot() == before


# --- every endpoint's write with invalid input: 422 and the target unchanged --------------------


@pytest.mark.parametrize(
    "endpoint, changes",
    [
        case("create company", {"name": ""}),
        case("create company", {"name": " " * 10}),
        case("create company", {"name": "x" * 256}),
        case("create company", {"name": 5}),
        case("create company", {"name": ["list"]}),
        case("create company", {"contact_email": "not-an-email"}),
        case("create company", {"contact_email": "a@" + "x" * 300 + ".com"}),
        case("create company", {"subscription_tier": "gold"}),
        case("create company", {"subscription_expires_at": "yesterday"}),
        case("create company", {"is_active": "yes please"}),
        case("create company", {"metadata": [1, 2]}),
        case("create company", {"metadata": "text"}),
        case("create company", {"notes": "x" * 100_001}),
        case("update company", {"name": None}),
        case("update company", {"name": "Good Name", "subscription_tier": "gold"}),
        case("update company", {"notes": "changed", "storage_quota_gb": -1}),
        case("update company", {"metadata": None}),
        case("update company", {"is_active": None}),
        case("update company", {"contact_phone": "1" * 65}),
        case("set storage", {"storage_connection_id": None}),
        case("set storage", {"storage_connection_id": "abc"}),
        case("set storage", {"storage_path": "x" * 1025}),
        case("create folder", {"name": ""}),
        case("create folder", {"path": ""}),
        case("create folder", {"path": "x" * 1025}),
        case("create folder", {"folder_type": "music"}),
        case("create connection", {"provider": "ftp"}),
        case("create connection", {"base_path": None}),
        case("create connection", {"credentials": ["not", "an", "object"]}),
        case("create connection", {"name": ""}),
        case("update connection", {"name": None}),
        case("update connection", {"provider": "dropbox"}),
        case("update connection", {"is_default": "sure"}),
        case("update connection", {"metadata": "x"}),
    ],
)
def test_invalid_writes_are_422_and_write_nothing(staff, world, endpoint, changes):
    with database_unchanged():
        assert_json_error(send_write(staff, world, endpoint, changes), 422)


def test_set_storage_with_a_missing_body_field_is_422(staff, world):
    with database_unchanged():
        assert_json_error(staff.put(f"/api/companies/{world['company']}/storage", json={"storage_path": "/p"}), 422)


# --- requests the router cannot place: JSON errors too ------------------------------------------


@pytest.mark.parametrize(
    "method, path, status",
    [
        ("GET", "/api/no-such-endpoint", 404),
        ("POST", "/api/companies/1/nothing", 404),
        ("PUT", "/api/companies", 405),
        ("POST", "/api/companies/1", 405),
        ("DELETE", "/api/storage/connections", 405),
    ],
)
def test_unroutable_requests_are_json_errors(staff, world, method, path, status):
    with database_unchanged():
        assert_json_error(staff.request(method, path, json={}), status)
