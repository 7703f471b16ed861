"""Writes to companies (and their folders).

Each service owns its transaction: inside a request it joins the request's unit of work
(arv.db.transaction; savepoint=False, a savepoint would only add round trips), elsewhere
(`manage.py shell`, a command) it is one transaction of its own, so its locks and rules hold
wherever it is called. Each validates the model as the admin does (arv.db.validation): an
invalid value raises ValidationError and writes nothing."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils.text import slugify

from arv.auth.permissions import require, require_session
from arv.db.queries import one_or_none
from arv.db.transaction import inserted
from arv.db.validation import full_clean
from arv.web.errors import Conflict, InvalidInput
from companies.access import companies_visible_to, require_member_writable
from companies.models import Company
from companies.selectors import company_get
from storage.models import StorageConnection, StorageFolder


def company_slug(name: str) -> str:
    # A name with no ASCII letters or digits still gets a usable, unique-enough slug.
    return slugify(name)[:255].strip("-") or f"company-{secrets.token_hex(4)}"


def _check_storage_connection(connection_id: int | None) -> None:
    if connection_id is None:
        return
    if not StorageConnection.objects.filter(pk=connection_id, is_active=True).exists():
        raise InvalidInput("storage_connection_id", "No active storage connection has this id.")


# The storage connection is checked (and looked up) by _check_storage_connection.
CHECKED_ELSEWHERE = ["storage_connection"]


def new_company(*, user: AbstractBaseUser, name: str, **fields: Any) -> Company:
    """A company the user may add, validated and not saved yet (company_create saves it; the API
    has arv.web.shaping.finish_insert insert it). Looks up only a storage connection it names."""
    require(user, "add", Company)
    _check_storage_connection(fields.get("storage_connection_id"))
    company = Company(name=name, slug=company_slug(name), **fields)
    full_clean(company, exclude=CHECKED_ELSEWHERE)
    # Once saved it is the answer, not a second query: full_clean left every field as stored
    # (NFKC names, canonical paths, timestamps in UTC: arv.web.schemas.Timestamp), and a new
    # company has no folders yet.
    company.folders_count = 0
    return company


@transaction.atomic(savepoint=False)
def company_create(*, user: AbstractBaseUser, name: str, **fields: Any) -> Company:
    return inserted(new_company(user=user, name=name, **fields))


@transaction.atomic(savepoint=False)
def company_update(*, user: AbstractBaseUser, company_id: int, **fields: Any) -> Company:
    """Change fields of a company the user may change, its row locked until the transaction ends."""
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
    full_clean(company, fields=fields, exclude=CHECKED_ELSEWHERE)
    company.save(update_fields=[*fields, "updated_at"])
    return company_get(user=user, company_id=company_id)


@transaction.atomic(savepoint=False)
def company_delete(*, user: AbstractBaseUser, company_id: int) -> None:
    require(user, "delete", Company)
    company = company_get(user=user, company_id=company_id)
    if company.is_default:
        raise Conflict("The default company cannot be deleted.")
    if company.folders_count:
        raise Conflict("The company still has folders; delete them first.")
    company.delete()


@transaction.atomic(savepoint=False)
def company_set_storage(
    *, user: AbstractBaseUser, company_id: int, storage_connection_id: int, storage_path: str | None
) -> Company:
    require(user, "change", Company)
    return company_update(
        user=user, company_id=company_id, storage_connection_id=storage_connection_id, storage_path=storage_path
    )


@transaction.atomic(savepoint=False)
def folder_create(*, user: AbstractBaseUser, company_id: int, **fields: Any) -> StorageFolder:
    """A new folder, within the company's projects_limit (409 beyond it). The company's row is
    locked first, so concurrent creates count one after the other and cannot pass the limit."""
    company = company_get(user=user, company_id=company_id)
    require_session(user, "add", StorageFolder)
    limit = Company.objects.select_for_update().filter(pk=company.pk).values_list("projects_limit", flat=True).get()
    if StorageFolder.objects.filter(company=company).count() >= limit:
        raise Conflict(f"The company has reached its limit of {limit} folders (projects_limit).")
    folder = StorageFolder(company=company, **fields)
    full_clean(folder, exclude=["company"])  # the company was just looked up
    folder.save(force_insert=True)
    return folder
