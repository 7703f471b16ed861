"""yandex_disk: a Yandex Disk, through its REST API (ARV_YANDEX_DISK_API_URL).

credentials: oauth_token. Success when the token is accepted (GET /v1/disk/) and base_path,
if set, is an existing folder (GET /v1/disk/resources?path=...); writable when the disk
has free space.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from urllib3.exceptions import HTTPError

from storage.providers import Outcome, failed
from storage.providers.remote import CheckClient, Deadline, transport_failure


def _where() -> tuple[str, str]:
    api = settings.YANDEX_DISK_API_URL.rstrip("/")
    return api, urlsplit(api).netloc or api


def no_answer(credentials: dict[str, Any], timeout: float) -> Outcome:
    return failed(f"{_where()[1]} did not answer within {timeout:g} s.")


def check(base_path: str | None, credentials: dict[str, Any], deadline: Deadline) -> Outcome:
    api, where = _where()
    timeout = deadline.seconds
    headers = {"Authorization": f"OAuth {credentials['oauth_token']}", "Accept": "application/json"}
    # The API's address is the operator's setting (ARV_YANDEX_DISK_API_URL): not confined.
    http = CheckClient(deadline, confined=False)
    try:
        disk = http.request("GET", f"{api}/v1/disk/", headers=headers)
        if disk.status in (401, 403):
            return failed(f"Yandex Disk refused the OAuth token ({disk.status}).")
        if disk.status != 200:
            return failed(f"Yandex Disk answered {disk.status} for the disk.")
        if base_path:
            query = urlencode({"path": base_path, "fields": "type,path"})
            resource = http.request("GET", f"{api}/v1/disk/resources?{query}", headers=headers)
            if resource.status == 404:
                return failed(f"{base_path} does not exist on the Yandex Disk.")
            if resource.status != 200:
                return failed(f"Yandex Disk answered {resource.status} for {base_path}.")
            if _json(resource.data).get("type") != "dir":
                return failed(f"{base_path} on the Yandex Disk is not a folder.")
    except HTTPError as exc:
        return transport_failure(exc, where, timeout)
    space = _json(disk.data)
    total, used = space.get("total_space"), space.get("used_space")
    if not isinstance(total, int) or not isinstance(used, int):
        return failed("Yandex Disk's answer has no total_space/used_space.")
    place = base_path or "The disk"
    if total > used:
        return Outcome(True, f"{place} is reachable; {total - used} bytes free.", True)
    return Outcome(True, f"{place} is reachable; the disk is full.", False)


def _json(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
