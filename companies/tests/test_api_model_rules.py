"""The model's validators guard the API too (the services validate as the admin does): a value
the request schema lets through but the model refuses is a 422 in the API's shape, and nothing
is written."""

import pytest

from companies.models import Company

pytestmark = pytest.mark.django_db(transaction=True)

# An address the model's EmailValidator (the admin's too) refuses, shaped like one the schema
# lets through: a one-letter top-level domain.
ADMIN_REFUSES = "someone@example.c"


def test_create_with_a_value_the_model_refuses_is_422_and_writes_nothing(staff):
    response = staff.post("/api/companies", json={"name": "Acme", "contact_email": ADMIN_REFUSES})
    assert response.status_code == 422, response.text
    assert response.json() == {
        "detail": [{"loc": ["body", "contact_email"], "msg": "Enter a valid email address.", "type": "value_error"}]
    }
    assert not Company.objects.filter(name="Acme").exists()


def test_update_with_a_value_the_model_refuses_is_422_and_writes_nothing(staff, make_company):
    company = make_company("Acme", contact_email="office@example.com")
    response = staff.patch(f"/api/companies/{company.pk}", json={"notes": "new", "contact_email": ADMIN_REFUSES})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "contact_email"]
    company.refresh_from_db()
    assert (company.contact_email, company.notes) == ("office@example.com", None)
