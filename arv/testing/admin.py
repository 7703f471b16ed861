"""The admin as a person uses it: its pages read as a browser reads them, its login form filled in."""

from __future__ import annotations

from html.parser import HTMLParser

import httpx

# The superuser the `superuser` fixture (arv.testing.fixtures) creates.
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
