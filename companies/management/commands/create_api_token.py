"""`manage.py create_api_token <username> [--staff] [--company SLUG]` (API.md)."""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from arv.auth.tokens import token_issue
from companies.models import Company, CompanyMembership


class Command(BaseCommand):
    help = "Create the user if missing, optionally make it staff or a company member, and print a new API token."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--staff", action="store_true", help="make the user staff (may do everything)")
        parser.add_argument("--company", metavar="SLUG", help="make the user a member of this company")
        parser.add_argument("--name", default="", help="what the token is for")

    @transaction.atomic
    def handle(self, *args, username: str, staff: bool, company: str | None, name: str, **options) -> None:
        if staff and company:
            raise CommandError("Choose --staff or --company, not both: staff users see every company.")
        User = get_user_model()
        user, created = User.objects.get_or_create(username=username)
        if created:
            user.set_unusable_password()
            user.save()
            self.stdout.write(f"Created user {username}.")
        if staff and not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
            self.stdout.write(f"{username} is now staff.")
        if company:
            member_of = Company.objects.filter(slug=company).first()
            if member_of is None:
                raise CommandError(f"No company has the slug {company!r}.")
            CompanyMembership.objects.update_or_create(user=user, defaults={"company": member_of})
            self.stdout.write(f"{username} is a member of {member_of.name}.")
        try:
            _, raw = token_issue(user=user, name=name)
        except ValidationError as exc:  # the model's rules (a name too long): nothing is kept
            raise CommandError(" ".join(exc.messages)) from None
        self.stdout.write(raw)
