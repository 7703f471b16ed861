"""Token services outside any request (`manage.py shell`, commands): the model's rules hold and
a refused token writes nothing."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from arv.auth.models import ApiToken
from arv.auth.tokens import token_issue, token_revoke, token_user

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_name_the_model_refuses_raises_validation_error_and_writes_nothing(staff_user):
    with pytest.raises(ValidationError) as raised:
        token_issue(user=staff_user, name="x" * 101)
    assert "name" in raised.value.message_dict
    assert not ApiToken.objects.exists()


def test_issue_and_revoke_outside_a_request(staff_user):
    token, raw = token_issue(user=staff_user, name="deploy")
    assert token_user(raw) == staff_user
    token_revoke(token=token)
    assert token_user(raw) is None
