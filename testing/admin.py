"""The admin as a person uses it: its pages read as a browser reads them, its login form filled in."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlencode

import httpx

# The superuser the `superuser` fixture (testing.fixtures) creates.
ADMIN_USERNAME, ADMIN_PASSWORD = "boss", "pw-for-tests-123"


class PageParser(HTMLParser):
    """Stylesheet links and the fields of each form (what a browser would submit unchanged)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stylesheets: list[str] = []
        self.forms: dict[str, dict] = {}  # id -> {"action": ..., "fields": [(name, value)]}
        self._form: dict | None = None
        self._select: str | None = None
        self._options: list[tuple[str, bool]] = []
        self._textarea: str | None = None
        self._text = ""

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "link" and a.get("rel") == "stylesheet":
            self.stylesheets.append(a["href"])
        elif tag == "form":
            self._form = {"action": a.get("action"), "fields": []}
            self.forms[a.get("id") or f"form-{len(self.forms)}"] = self._form
        elif self._form is None or "name" not in a and tag != "option":
            return
        elif tag == "input":
            kind = a.get("type", "text")
            if kind in ("submit", "button", "image", "reset", "file") or (
                kind in ("checkbox", "radio") and "checked" not in a
            ):
                return
            self._form["fields"].append((a["name"], a.get("value") or ("on" if kind == "checkbox" else "")))
        elif tag == "select":
            self._select, self._options = a["name"], []
        elif tag == "option" and self._select is not None:
            self._options.append((a.get("value", ""), "selected" in a))
        elif tag == "textarea":
            self._textarea, self._text = a["name"], ""

    def handle_data(self, data):
        if self._textarea is not None:
            self._text += data

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select" and self._select is not None:
            chosen = [value for value, selected in self._options if selected] or [v for v, _ in self._options[:1]]
            self._form["fields"].extend((self._select, value) for value in chosen)
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            self._form["fields"].append((self._textarea, self._text.removeprefix("\n")))
            self._textarea = None


def parse_page(html: str) -> PageParser:
    parser = PageParser()
    parser.feed(html)
    return parser


def log_in(
    browser: httpx.Client,
    login_path: str = "/admin/login/",
    next_path: str = "/admin/",
    username: str = ADMIN_USERNAME,
    password: str = ADMIN_PASSWORD,
) -> None:
    """Log in through the admin's login form, as a person would (the superuser fixture's by default)."""
    page = browser.get(login_path, params={"next": next_path})
    assert page.status_code == 200, page.text[:2000]
    form = parse_page(page.text).forms["login-form"]
    data = {**dict(form["fields"]), "username": username, "password": password}
    answer = browser.post(form["action"], data=data, follow_redirects=False)
    assert answer.status_code == 302, answer.text[:2000]
    assert answer.headers["Location"] == next_path


def send_form(browser: httpx.Client, path: str, form_id: str, /, **changes: str) -> httpx.Response:
    """Open an admin page, change some fields of one of its forms and send it, as a person would
    (`_save` pressed); the answer is not followed: 302 when saved, 200 with the errors when not."""
    page = browser.get(path)
    assert page.status_code == 200, page.text[:2000]
    form = parse_page(page.text).forms[form_id]
    fields = [(name, value) for name, value in form["fields"] if name not in changes]
    body = urlencode([*fields, *changes.items(), ("_save", "Save")])
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    return browser.post(path, content=body, headers=headers, follow_redirects=False)


def form_errors(page: httpx.Response) -> list[str]:
    """The messages of a form sent back with errors (Django's `errorlist`s)."""
    parser = _ErrorList()
    parser.feed(page.text)
    return parser.errors


class _ErrorList(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.errors: list[str] = []
        self._depth = 0  # inside a <ul class="errorlist">

    def handle_starttag(self, tag, attrs):
        if tag == "ul" and "errorlist" in (dict(attrs).get("class") or "").split():
            self._depth += 1
        elif tag == "li" and self._depth:
            self.errors.append("")

    def handle_endtag(self, tag):
        if tag == "ul" and self._depth:
            self._depth -= 1

    def handle_data(self, data):
        if self._depth and self.errors:
            self.errors[-1] += data
