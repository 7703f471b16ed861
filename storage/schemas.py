from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from arv.web.schemas import MAX_INT, InputSchema, JsonObject, OutputSchema, QuerySchema, text
from storage.fields import nfkc
from storage.paths import canonical_path, reject_control_characters


def _at_most(max_length: int) -> Callable[[str], str]:
    def check(value: str) -> str:
        if len(value) > max_length:  # again after rewriting: NFKC may lengthen, a path gains its "/"
            raise ValueError(f"must have at most {max_length} characters")
        return value

    return check


# A name as stored (storage.fields.NameField): NFKC, so look-alike names are one name.
Name = Annotated[text(255, min_length=1), AfterValidator(nfkc), AfterValidator(_at_most(255))]
# A storage path in its canonical form (storage.paths); `..`, backslashes, control characters: 422.
StoragePath = Annotated[text(1024), AfterValidator(canonical_path), AfterValidator(_at_most(1024))]
FolderPath = Annotated[
    text(1024, min_length=1),
    AfterValidator(lambda value: canonical_path(value, allow_root=False)),
    AfterValidator(_at_most(1024)),
]
# A base path's form depends on the provider (storage.models.connection_base_path); here only what
# no provider accepts.
BasePath = Annotated[text(1024), AfterValidator(reject_control_characters)]

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
    name: Name = None
    provider: ProviderName = None
    base_path: BasePath | None = None
    credentials: JsonObject = None
    is_default: bool = None
    is_active: bool = None
    metadata: JsonObject = None


class ConnectionCreate(ConnectionUpdate):
    name: Name
    provider: ProviderName

    @model_validator(mode="after")
    def local_disk_needs_base_path(self) -> ConnectionCreate:
        if self.provider == "local_disk" and not self.base_path:
            raise ValueError("base_path is required for local_disk connections")
        return self


class ConnectionListQuery(QuerySchema):
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


class FolderPageOut(OutputSchema):
    items: list[FolderOut]
    total: int


class FolderListQuery(QuerySchema):
    page: int = Field(1, ge=1, le=MAX_INT)
    page_size: int = Field(100, ge=1, le=100)


class FolderCreate(InputSchema):
    name: text(255, min_length=1)
    path: FolderPath
    folder_type: FolderTypeName = "custom"
