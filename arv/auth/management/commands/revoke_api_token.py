"""`manage.py revoke_api_token <key id | token>`: the token stops working at once."""

from django.core.management.base import BaseCommand, CommandError

from arv.auth.models import ApiToken
from arv.auth.tokens import token_revoke


class Command(BaseCommand):
    help = "Revoke an API token, given its key id (as the admin lists it) or the whole token."

    def add_arguments(self, parser) -> None:
        parser.add_argument("token", help="the key id, or the token itself")

    def handle(self, *args, token: str, **options) -> None:
        parts = token.split("_")
        key_id = parts[1] if len(parts) >= 3 and parts[0] == "arv" else token
        row = ApiToken.objects.filter(key_id=key_id).first()
        if row is None:
            raise CommandError("No such token.")
        token_revoke(token=row)
        self.stdout.write(f"Revoked token {row.key_id} of {row.user}.")
