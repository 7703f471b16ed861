"""The request pipeline (arv.pipeline.Pipeline.http) over real HTTP: a real uvicorn process on real PostgreSQL.

What every request goes through before and around a view: body limits enforced before
any work, the mount point (--root-path), ALLOWED_HOSTS and the HTTPS settings for the
API as for the admin, static files with and without collectstatic (and without a
database worker), and an API that never answers HTML.

Requests httpx would not send (headers without their body, a chunked body left open)
go over a raw socket (RawConnection).
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
from django.db import connection

from arv.auth.tokens import token_issue
from companies.models import Company
from testing.admin import ADMIN_PASSWORD, ADMIN_USERNAME, log_in, parse_page
from testing.postgres import hold_lock_on_companies
from testing.servers import UvicornProcess

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="servers run on the PostgreSQL test database"),
]

LIMIT = 2048  # ARV_MAX_BODY_BYTES of the servers that test the limits
MOUNT = "/arv"  # uvicorn --root-path


# --- raw HTTP/1.1 ---------------------------------------------------------------------------------


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self):
        return json.loads(self.body)


class RawConnection:
    """One TCP connection to a server; requests are sent as the bytes given, answers parsed as they come."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        self.host = parts.netloc
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        self.buffer = b""

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def head(self, method: str, path: str, headers: dict[str, str]) -> bytes:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}", *(f"{k}: {v}" for k, v in headers.items())]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _more(self) -> None:
        data = self.sock.recv(65536)  # a timeout (TimeoutError) fails the test: no answer in time
        if not data:
            raise EOFError(f"the server closed the connection; received so far: {self.buffer[:500]!r}")
        self.buffer += data

    def _take(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._more()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def _line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            self._more()
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def read_response(self) -> RawResponse:
        while b"\r\n\r\n" not in self.buffer:
            self._more()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = self._take(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while size := int(self._line().split(b";")[0], 16):
                body += self._take(size)
                assert self._take(2) == b"\r\n"
            while self._line():  # trailers
                pass
        else:
            body = b""
        return RawResponse(int(status_line.split()[1]), headers, body)

    def closed_by_server(self, within: float = 5.0) -> bool:
        """Whether the server closes the connection (after what was read) within `within` seconds."""
        if self.buffer:
            return False
        self.sock.settimeout(within)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def chunked(data: bytes, size: int = 512, last: bool = True) -> bytes:
    """data as a chunked body; without its last (empty) chunk if not last: the body is still open."""
    body = b"".join(chunk(data[start : start + size]) for start in range(0, len(data), size))
    return body + (b"0\r\n\r\n" if last else b"")


def padded_json(name: str, size: int) -> bytes:
    """A valid company body of exactly `size` bytes (whitespace padding): only its size can be wrong."""
    head = json.dumps({"name": name})[:-1].encode()
    return head + b" " * (size - len(head) - 1) + b"}"


def cache_max_age(response) -> int:
    match = re.search(r"max-age=(\d+)", response.headers.get("Cache-Control", ""))
    return int(match.group(1)) if match else 0


def assert_json_error(response, status: int) -> None:
    """An httpx.Response or a RawResponse: `status`, JSON, {"detail": ...}."""
    __tracebackhide__ = True
    if isinstance(response, httpx.Response):
        actual, text = response.status_code, response.text
    else:
        actual, text = response.status, response.body.decode(errors="replace")
    assert actual == status, (actual, text[:2000])
    content_type = response.headers.get("content-type", "")
    assert content_type.startswith("application/json"), (content_type, text[:2000])
    body = json.loads(text)
    assert isinstance(body, dict) and body.get("detail"), body


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def staff_token(staff_user) -> str:
    return token_issue(user=staff_user)[1]


@pytest.fixture
def limited(start_server) -> UvicornProcess:
    return start_server(ARV_MAX_BODY_BYTES=str(LIMIT))


@dataclass
class AdminForm:
    """The admin's "add company" form of a logged-in superuser, ready to be sent over a raw socket."""

    path: str
    cookie: str
    fields: list[tuple[str, str]]

    def body(self, name: str, notes: str = "") -> bytes:
        fields = [(k, v) for k, v in self.fields if k not in ("name", "notes")]
        return urlencode([*fields, ("name", name), ("notes", notes), ("_save", "Save")]).encode()


@pytest.fixture
def add_company_form(limited, superuser) -> AdminForm:
    path = "/admin/companies/company/add/"
    with httpx.Client(base_url=limited.url, timeout=30) as browser:
        log_in(browser, next_path=path)
        page = browser.get(path)
        assert page.status_code == 200, page.text[:2000]
        form = parse_page(page.text).forms["company_form"]
        cookie = "; ".join(f"{name}={value}" for name, value in browser.cookies.items())
    return AdminForm(path, cookie, form["fields"])


# --- 1. limits before work -----------------------------------------------------------------------


def api_headers(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json", **extra}


FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize("declared", [LIMIT + 1, 10**9], ids=["one byte over", "a gigabyte"])
@pytest.mark.parametrize("where", ["api", "admin"])
def test_a_declared_length_over_the_limit_is_413_before_the_body_is_sent(limited, staff_token, where, declared):
    path, headers = {
        "api": ("/api/companies", api_headers(staff_token)),
        "admin": ("/admin/login/", {"Content-Type": FORM}),
    }[where]
    with RawConnection(limited.url) as conn:
        conn.send(conn.head("POST", path, {**headers, "Content-Length": str(declared)}))  # and no body
        response = conn.read_response()
        assert response.status == 413, response
        if where == "api":
            assert_json_error(response, 413)
            assert str(LIMIT) in response.json()["detail"]
        # The unread body must not be taken for the next request: the server hangs up.
        assert response.headers.get("connection", "").lower() == "close", response.headers
        assert conn.closed_by_server()
    assert "Traceback" not in limited.output()


@pytest.mark.parametrize("complete", [False, True], ids=["left open", "complete"])
def test_a_chunked_api_body_past_the_limit_is_413_and_writes_nothing(limited, staff_token, complete):
    body = padded_json("Chunked Co", LIMIT + 600)
    with RawConnection(limited.url) as conn:
        head = conn.head("POST", "/api/companies", api_headers(staff_token, **{"Transfer-Encoding": "chunked"}))
        conn.send(head + chunked(body, last=complete))
        response = conn.read_response()
        assert_json_error(response, 413)
        assert conn.closed_by_server()
    assert not Company.objects.filter(name="Chunked Co").exists()


@pytest.mark.parametrize("complete", [False, True], ids=["left open", "complete"])
def test_a_chunked_admin_form_past_the_limit_is_413_and_writes_nothing(limited, add_company_form, complete):
    body = add_company_form.body("Chunked Admin Co", notes="x" * LIMIT)
    assert len(body) > LIMIT
    with RawConnection(limited.url) as conn:
        head = conn.head(
            "POST",
            add_company_form.path,
            {"Content-Type": FORM, "Cookie": add_company_form.cookie, "Transfer-Encoding": "chunked"},
        )
        conn.send(head + chunked(body, last=complete))
        response = conn.read_response()
        assert response.status == 413, response
        assert conn.closed_by_server()
    assert not Company.objects.filter(name="Chunked Admin Co").exists()


def test_the_same_admin_form_under_the_limit_creates_the_company(limited, add_company_form):
    """The control of the test above: its form, chunked, is a valid one when small enough."""
    body = add_company_form.body("Chunked Admin Co", notes="fits")
    assert len(body) <= LIMIT
    with RawConnection(limited.url) as conn:
        head = conn.head(
            "POST",
            add_company_form.path,
            {"Content-Type": FORM, "Cookie": add_company_form.cookie, "Transfer-Encoding": "chunked"},
        )
        conn.send(head + chunked(body))
        response = conn.read_response()
    assert response.status == 302, response
    assert Company.objects.filter(name="Chunked Admin Co", notes="fits").exists()


@pytest.mark.parametrize("how", ["Content-Length", "chunked"])
def test_an_api_body_at_the_limit_is_read(limited, staff_token, how):
    body = padded_json("At The Limit Co", LIMIT)
    with RawConnection(limited.url) as conn:
        if how == "chunked":
            conn.send(conn.head("POST", "/api/companies", api_headers(staff_token, **{"Transfer-Encoding": "chunked"})))
            conn.send(chunked(body))
        else:
            conn.send(conn.head("POST", "/api/companies", api_headers(staff_token, **{"Content-Length": str(LIMIT)})))
            conn.send(body)
        response = conn.read_response()
    assert response.status == 201, response
    assert response.json()["name"] == "At The Limit Co"
    assert Company.objects.filter(name="At The Limit Co").exists()


# --- 2. mounted below a path (--root-path) -------------------------------------------------------


class BehindProxy:
    """A browser of public URLs under MOUNT, for a server run with `uvicorn --root-path MOUNT`.

    uvicorn prepends its root path to the path it receives: the proxy in front strips
    MOUNT, so public /arv/x reaches uvicorn as /x, and the application gets the scope
    root_path="/arv", path="/arv/x" (the ASGI spec's mounted application).
    """

    def __init__(self, server: UvicornProcess) -> None:
        self.client = httpx.Client(base_url=server.url, timeout=30)

    def request(self, method: str, public_path: str, **kwargs) -> httpx.Response:
        assert public_path.startswith(MOUNT + "/"), f"{public_path!r} is not under {MOUNT}/: a proxy would not pass it"
        return self.client.request(method, public_path.removeprefix(MOUNT), **kwargs)

    def get(self, public_path: str, **kwargs) -> httpx.Response:
        return self.request("GET", public_path, **kwargs)

    def post(self, public_path: str, **kwargs) -> httpx.Response:
        return self.request("POST", public_path, **kwargs)

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def mounted(start_server) -> UvicornProcess:
    return start_server(uvicorn_args=("--root-path", MOUNT))


@pytest.fixture
def proxy(mounted) -> Iterator[BehindProxy]:
    browser = BehindProxy(mounted)
    yield browser
    browser.close()


def test_the_api_answers_below_the_mount_point(mounted, proxy, staff_token, make_company):
    make_company("Mounted Co")
    health = proxy.get(f"{MOUNT}/api/health")
    assert health.status_code == 200, health.text[:2000]
    assert health.json() == {"status": "ok", "database": "ok"}
    companies = proxy.get(f"{MOUNT}/api/companies", headers={"Authorization": f"Bearer {staff_token}"})
    assert companies.status_code == 200, companies.text[:2000]
    assert "Mounted Co" in companies.text
    assert_json_error(proxy.get(f"{MOUNT}/api/nope"), 404)
    assert "Traceback" not in mounted.output()


def test_requests_outside_the_mount_point_are_no_500(mounted):
    """What reaches uvicorn unstripped (/arv/api/health: the public /arv/arv/api/health) or
    as the bare path is answered, never with a 500; an /api/ path only ever with JSON."""
    for path in ["/api/health", f"{MOUNT}/api/health", f"{MOUNT}/admin/login/", "/"]:
        response = httpx.get(mounted.url + path, timeout=30)
        assert response.status_code < 500, (path, response.status_code, response.text[:2000])
    assert httpx.get(mounted.url + "/api/health", timeout=30).headers["Content-Type"].startswith("application/json")
    assert "Traceback" not in mounted.output()


def test_the_admin_login_page_links_below_the_mount_point(mounted, proxy):
    page = proxy.get(f"{MOUNT}/admin/login/")
    assert page.status_code == 200, page.text[:2000]
    parsed = parse_page(page.text)
    assert parsed.forms["login-form"]["action"].startswith(f"{MOUNT}/"), parsed.forms["login-form"]["action"]
    assert parsed.stylesheets, page.text[:2000]
    outside = [href for href in parsed.stylesheets if not href.startswith(f"{MOUNT}/")]
    assert not outside, f"stylesheets linked outside {MOUNT}/: {outside}"
    for href in parsed.stylesheets:
        css = proxy.get(href)
        assert css.status_code == 200, (href, css.status_code)
        assert css.headers["Content-Type"].startswith("text/css"), (href, css.headers["Content-Type"])


def test_a_superuser_logs_in_and_opens_the_admin_below_the_mount_point(mounted, proxy, superuser, make_company):
    make_company("Mounted Admin Co")
    changelist = f"{MOUNT}/admin/companies/company/"
    first = proxy.get(changelist)
    assert first.status_code == 302, first.text[:2000]
    login_url = first.headers["Location"]
    assert login_url.startswith(f"{MOUNT}/admin/login/"), login_url
    page = proxy.get(login_url)
    assert page.status_code == 200, page.text[:2000]
    form = parse_page(page.text).forms["login-form"]
    fields = dict(form["fields"])
    assert fields["next"] == changelist
    answer = proxy.post(form["action"], data={**fields, "username": ADMIN_USERNAME, "password": ADMIN_PASSWORD})
    assert answer.status_code == 302, answer.text[:2000]
    assert answer.headers["Location"] == changelist
    listing = proxy.get(changelist)
    assert listing.status_code == 200, listing.text[:2000]
    assert "Mounted Admin Co" in listing.text
    assert f'href="{MOUNT}/admin/logout/"' in listing.text or f'action="{MOUNT}/admin/logout/"' in listing.text
    assert "Traceback" not in mounted.output()


# --- 3. ALLOWED_HOSTS and HTTPS, for the API as for the admin ---------------------------------------


def test_a_host_not_allowed_is_400_for_the_api_and_the_admin(start_server):
    server = start_server()
    api = httpx.get(f"{server.url}/api/health", headers={"Host": "evil.example"}, timeout=30)
    assert_json_error(api, 400)
    admin = httpx.get(f"{server.url}/admin/login/", headers={"Host": "evil.example"}, timeout=30)
    assert admin.status_code == 400, admin.text[:2000]
    # The allowed host, for contrast.
    assert httpx.get(f"{server.url}/api/health", timeout=30).status_code == 200
    assert httpx.get(f"{server.url}/admin/login/", timeout=30).status_code == 200


@pytest.mark.parametrize("path", ["/api/health", "/admin/login/"])
def test_with_https_plain_http_is_redirected_and_https_gets_hsts(start_server, path):
    server = start_server(DJANGO_HTTPS="true")
    host = urlsplit(server.url).netloc
    plain = httpx.get(server.url + path, timeout=30)
    assert plain.status_code == 301, (plain.status_code, plain.text[:2000])
    assert plain.headers["Location"] == f"https://{host}{path}"
    assert "Strict-Transport-Security" not in plain.headers  # only ever over HTTPS
    secure = httpx.get(server.url + path, headers={"X-Forwarded-Proto": "https"}, timeout=30)
    assert secure.status_code == 200, (secure.status_code, secure.text[:2000])
    hsts = secure.headers.get("Strict-Transport-Security", "")
    assert "max-age=31536000" in hsts and "includeSubDomains" in hsts, secure.headers


# --- 4. static files, with and without collectstatic ---------------------------------------------


def test_the_admin_works_before_collectstatic(start_server, tmp_path):
    empty = tmp_path / "no-collectstatic"
    empty.mkdir()
    server = start_server(ARV_STATIC_ROOT=str(empty), DJANGO_DEBUG="false")
    page = httpx.get(f"{server.url}/admin/login/", timeout=30)
    assert page.status_code == 200, (page.status_code, page.text[:2000], server.output())
    stylesheets = parse_page(page.text).stylesheets
    assert "/static/admin/css/base.css" in stylesheets, stylesheets
    for href in stylesheets:
        css = httpx.get(server.url + href, timeout=30)
        assert css.status_code == 200, (href, css.status_code)
        assert css.headers["Content-Type"].startswith("text/css")
    assert list(empty.iterdir()) == []  # served from the apps, nothing written
    assert "Traceback" not in server.output()


def test_after_collectstatic_the_admin_links_hashed_files_cached_for_long(start_server):
    server = start_server()
    page = httpx.get(f"{server.url}/admin/login/", timeout=30)
    assert page.status_code == 200, page.text[:2000]
    stylesheets = parse_page(page.text).stylesheets
    base = [href for href in stylesheets if re.fullmatch(r"/static/admin/css/base\.[0-9a-f]{12}\.css", href)]
    assert base, stylesheets
    for href in stylesheets:
        css = httpx.get(server.url + href, timeout=30)
        assert css.status_code == 200, (href, css.status_code)
        assert css.headers["Content-Type"].startswith("text/css")
        assert cache_max_age(css) >= 365 * 24 * 3600, (href, css.headers.get("Cache-Control"))


# --- 5. the API never answers HTML ---------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path, status",
    [
        ("GET", "/api/nope", 404),
        ("GET", "/api/", 404),
        ("POST", "/api/nope/deeper", 404),
        ("DELETE", "/api/health", 405),
        ("PUT", "/api/health", 405),
    ],
)
def test_the_api_never_answers_html(start_server, method, path, status):
    server = start_server()
    response = httpx.request(method, server.url + path, timeout=30)
    assert_json_error(response, status)
    if status == 405:
        assert "GET" in response.headers["Allow"], response.headers


# --- 6. static files never lease a database worker ------------------------------------------------


def wait_until(condition, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_static_files_are_served_while_the_only_worker_is_busy(start_server, staff_token, make_company, observer):
    pool_timeout = 1.0
    server = start_server(DB_POOL_SIZE="1", DB_MAX_OVERFLOW="0", DB_POOL_TIMEOUT=str(int(pool_timeout)))
    company = make_company("Locked Co")
    headers = {"Authorization": f"Bearer {staff_token}"}
    linked_css = parse_page(httpx.get(f"{server.url}/admin/login/", timeout=30).text).stylesheets[0]

    def waiting_on_the_lock() -> bool:
        rows = observer.conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name = 'arv'"
            " AND wait_event_type = 'Lock'",
            [observer.dbname],
        ).fetchone()
        return rows[0] >= 1

    blocker = hold_lock_on_companies()
    try:
        with ThreadPoolExecutor(1) as pool:
            stuck = pool.submit(httpx.get, f"{server.url}/api/companies/{company.id}", headers=headers, timeout=30)
            wait_until(waiting_on_the_lock, what="the only worker to wait for the lock")
            # The worker is taken: an API request waits the pool timeout and is refused.
            refused = httpx.get(f"{server.url}/api/companies/{company.id}", headers=headers, timeout=30)
            assert refused.status_code == 503, refused.text
            # Static files do not need it.
            for path, status in [(linked_css, 200), ("/static/admin/css/base.css", 200), ("/static/nope.css", 404)]:
                started = time.monotonic()
                response = httpx.get(server.url + path, timeout=30)
                elapsed = time.monotonic() - started
                assert response.status_code == status, (path, response.status_code, response.text[:500])
                assert elapsed < pool_timeout, f"{path} took {elapsed:.2f}s: it waited for a database worker"
            assert not stuck.done()
            blocker.close()
            assert stuck.result(timeout=30).status_code == 200
    finally:
        blocker.close()
    assert "Traceback" not in server.output()


def test_a_receiver_a_contributor_connects_to_the_request_signals_runs(start_server):
    """The server spares Django's own connection upkeep on the event loop (arv.pipeline.
    spare_django_request_upkeep); any other receiver of request_started/request_finished runs
    for every request, API and admin alike."""
    server = start_server(DJANGO_SETTINGS_MODULE="testing.settings")
    url = f"{server.url}/api/test/request-signals"
    before = httpx.get(url, timeout=30).json()  # the first request imports the receivers
    httpx.get(f"{server.url}/admin/login/", timeout=30)
    after = httpx.get(url, timeout=30).json()
    assert after["request_started"] - before["request_started"] == 2
    assert after["request_finished"] - before["request_finished"] == 2
