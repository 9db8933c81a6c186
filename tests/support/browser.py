"""A minimal browser for the login and consent pages: keeps cookies, follows redirects on the site it is on,
parses forms and submits them, and stops (without fetching) at the first redirect that leaves the site."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx2


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    buttons: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Page:
    url: str
    status: int
    html: str
    forms: list[Form]

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    def form(self) -> Form:
        assert len(self.forms) == 1, f"expected one form on {self.url}, found {len(self.forms)}:\n{self.html}"
        return self.forms[0]


@dataclass(frozen=True)
class LeftSite:
    """A redirect to another origin (the client's redirect URI): recorded, not followed."""

    location: str


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._current: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._current = Form(action=a.get("action", ""), method=a.get("method", "get").lower())
            self.forms.append(self._current)
        elif self._current is None or "name" not in a:
            return
        elif tag == "input" and a.get("type", "text") in ("hidden", "text"):
            self._current.fields[a["name"]] = a.get("value", "")
        elif tag == "button" or (tag == "input" and a.get("type") == "submit"):
            self._current.buttons.append((a["name"], a.get("value", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class Browser:
    def __init__(self, client: httpx2.AsyncClient, max_redirects: int = 10) -> None:
        self._client = client  # its cookie jar is the browser's
        self._max_redirects = max_redirects
        self.history: list[str] = []  # "METHOD path -> status", in order

    async def open(self, url: str) -> Page | LeftSite:
        return await self._follow(self._client.build_request("GET", url))

    async def submit(self, page: Page, form: Form, **values: str) -> Page | LeftSite:
        """Submit `form` of `page` with `values` overriding its fields; a button is chosen by its name=value."""
        data = dict(form.fields)
        for name, value in values.items():
            if (name, value) not in form.buttons and name not in form.fields:
                raise AssertionError(f"the form on {page.url} has no field or button {name}={value}: {form}")
            data[name] = value
        target = urljoin(page.url, form.action or page.url)
        if form.method == "post":
            request = self._client.build_request("POST", target, data=data)
        else:
            request = self._client.build_request("GET", target, params=data)
        return await self._follow(request)

    async def _follow(self, request: httpx2.Request) -> Page | LeftSite:
        for _ in range(self._max_redirects):
            response = await self._client.send(request, follow_redirects=False)
            self.history.append(f"{request.method} {request.url.path} -> {response.status_code}")
            if not response.is_redirect:
                parser = _FormParser()
                parser.feed(response.text)
                return Page(str(request.url), response.status_code, response.text, parser.forms)
            location = urljoin(str(request.url), response.headers["location"])
            if _origin(location) != _origin(str(request.url)):
                return LeftSite(location)
            request = self._client.build_request("GET", location)  # 302/303 after a form post: GET
        raise AssertionError(f"more than {self._max_redirects} redirects: {self.history}")
