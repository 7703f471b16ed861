from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from ninja import Schema
from pydantic import model_validator

from arv.web.schemas import InputSchema, JsonObject, OutputSchema, text

ProviderName = Literal["local_disk", "minio", "yandex_disk"]
FolderTypeName = Literal["portraits", "videos", "markers", "custom"]


class ConnectionOut(OutputSchema):
    id: int
    name: str
    provider: ProviderName
    base_path: str | None
    is_default: bool
    is_active: bool
    last_tested_at: datetime | None
    test_status: Literal["success", "error"] | None
    test_error: str | None
    metadata: dict[str, Any]
    companies_count: int
    created_at: datetime
    updated_at: datetime


class ConnectionUpdate(InputSchema):
    name: text(255, min_length=1) = None
    provider: ProviderName = None
    base_path: text(1024) | None = None
    credentials: JsonObject = None
    is_default: bool = None
    is_active: bool = None
    metadata: JsonObject = None


class ConnectionCreate(ConnectionUpdate):
    name: text(255, min_length=1)
    provider: ProviderName

    @model_validator(mode="after")
    def local_disk_needs_base_path(self) -> ConnectionCreate:
        if self.provider == "local_disk" and not self.base_path:
            raise ValueError("base_path is required for local_disk connections")
        return self


class ConnectionListQuery(Schema):
    is_active: bool | None = None


class ConnectionTestOut(OutputSchema):
    status: Literal["success", "error"]
    message: str
    tested_at: datetime
    writable: bool


class ConnectionStatsOut(OutputSchema):
    companies_count: int
    folders_count: int
    files_count: int
    total_size_bytes: int


class FolderOut(OutputSchema):
    id: int
    company_id: int
    name: str
    path: str
    folder_type: FolderTypeName
    files_count: int
    total_size_bytes: int
    created_at: datetime
    updated_at: datetime


class FolderCreate(InputSchema):
    name: text(255, min_length=1)
    path: text(1024, min_length=1)
    folder_type: FolderTypeName = "custom"
