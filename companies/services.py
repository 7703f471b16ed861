"""Writes to companies. Each runs inside the request's transaction (arv.db.transaction)."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.utils.text import slugify

from arv.db.queries import one_or_none
from arv.web.errors import Conflict, InvalidInput
from companies.access import companies_visible_to, require_member_writable, require_staff
from companies.models import Company
from companies.selectors import company_get
from storage.models import StorageConnection


def company_slug(name: str) -> str:
    # A name with no ASCII letters or digits still gets a usable, unique-enough slug.
    return slugify(name)[:255].strip("-") or f"company-{secrets.token_hex(4)}"


def _check_storage_connection(connection_id: int | None) -> None:
    if connection_id is None:
        return
    if not StorageConnection.objects.filter(pk=connection_id, is_active=True).exists():
        raise InvalidInput("storage_connection_id", "No active storage connection has this id.")


def company_create(*, user: AbstractBaseUser, name: str, **fields: Any) -> Company:
    require_staff(user)
    _check_storage_connection(fields.get("storage_connection_id"))
    company = Company.objects.create(name=name, slug=company_slug(name), **fields)
    return company_get(user=user, company_id=company.pk)


def company_update(*, user: AbstractBaseUser, company_id: int, **fields: Any) -> Company:
    company = one_or_none(companies_visible_to(user).select_for_update().filter(pk=company_id))
    if company is None:
        return company_get(user=user, company_id=company_id)  # raises the 404
    if fields.get("name") == company.name:
        del fields["name"]  # unchanged (e.g. a client sending the object back): no rename to refuse
    require_member_writable(user, set(fields))
    if "storage_connection_id" in fields:
        _check_storage_connection(fields["storage_connection_id"])
    if "name" in fields:
        fields["slug"] = company_slug(fields["name"])
    for field, value in fields.items():
        setattr(company, field, value)
    company.save(update_fields=[*fields, "updated_at"])
    return company_get(user=user, company_id=company_id)


def company_delete(*, user: AbstractBaseUser, company_id: int) -> None:
    require_staff(user)
    company = company_get(user=user, company_id=company_id)
    if company.is_default:
        raise Conflict("The default company cannot be deleted.")
    if company.folders_count:
        raise Conflict("The company still has folders; delete them first.")
    company.delete()


def company_set_storage(
    *, user: AbstractBaseUser, company_id: int, storage_connection_id: int, storage_path: str | None
) -> Company:
    require_staff(user)
    return company_update(
        user=user, company_id=company_id, storage_connection_id=storage_connection_id, storage_path=storage_path
    )
