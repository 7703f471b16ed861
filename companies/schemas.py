from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from arv.db.storable import MAX_INT
from arv.web.schemas import Count, InputSchema, JsonObject, ObjectId, OutputSchema, QuerySchema, Timestamp, text
from storage.fields import nfkc
from storage.schemas import Name, StoragePath

Tier = Literal["basic", "pro", "enterprise"]
# An address is what the model's EmailValidator accepts (the services' full_clean, a 422 in the
# API's shape): one rule for the API and the admin, where pydantic's EmailStr had a second, stricter
# one of its own (email-validator, the create request's most expensive field).
Email = Annotated[text(255), Field(json_schema_extra={"format": "email"})]


class CompanyOut(OutputSchema):
    id: int
    name: str
    slug: str
    contact_email: str | None
    contact_phone: str | None
    telegram_chat_id: str | None
    storage_connection_id: int | None
    storage_path: str | None
    subscription_tier: Tier
    storage_quota_gb: int
    storage_used_bytes: int
    projects_limit: int
    is_active: bool
    is_default: bool
    subscription_expires_at: datetime | None
    notes: str | None
    metadata: dict[str, Any]
    folders_count: int
    created_at: datetime
    updated_at: datetime


class CompanyPageOut(OutputSchema):
    items: list[CompanyOut]
    total: int
    page: int
    page_size: int
    total_pages: int


class CompanyListQuery(QuerySchema):
    page: int = Field(1, ge=1, le=MAX_INT)
    page_size: int = Field(20, ge=1, le=100)
    search: Annotated[text(255), AfterValidator(nfkc)] = ""  # names are stored NFKC
    is_active: bool | None = None


# Fields that may be null are typed `X | None`; the rest reject an explicit null
# (their default None only stands for "not sent" and is never validated).
class CompanyFields(InputSchema):
    contact_email: Email | None = None
    contact_phone: text(64) | None = None
    telegram_chat_id: text(64) | None = None
    storage_connection_id: ObjectId | None = None
    storage_path: StoragePath | None = None
    subscription_tier: Tier = None
    storage_quota_gb: Count = None
    projects_limit: Count = None
    is_active: bool = None
    subscription_expires_at: Timestamp | None = None
    notes: text(100_000) | None = None
    metadata: JsonObject = None


class CompanyCreate(CompanyFields):
    name: Name


class CompanyUpdate(CompanyFields):
    name: Name = None


class CompanyStorageIn(InputSchema):
    storage_connection_id: ObjectId
    storage_path: StoragePath | None = None
