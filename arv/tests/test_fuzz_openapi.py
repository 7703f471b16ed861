"""Schemathesis fuzzes every operation of /api/openapi.json against the live server, as staff.

Valid and invalid requests (schemathesis's positive and negative modes) are generated from
the API's own schema with a fixed seed, derandomized Hypothesis and a fixed budget, so every
run sends the same requests:

- test_fuzzed_requests_get_no_server_error_and_answers_match_the_schema: no 5xx (API.md:
  client input never produces a 500, and a 503 means the database is down, not that the input
  was bad), and every documented answer matches its schema and content type. The full budget:
  schemathesis's coverage cases (boundaries, every enum value, each kind of invalid value)
  plus MAX_EXAMPLES generated cases per operation.

- test_fuzzed_answers_use_documented_status_codes: every status code answered is declared
  in the schema (so clients generated from it know the error answers).

Not asserted (a known gap): pydantic's lax mode accepts e.g. 0 for a boolean, which
schemathesis's negative_data_rejection counts as a failure.

The number of requests sent is printed at the end of the module.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter

import httpx
import hypothesis
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SEED = 20240501
MAX_EXAMPLES = 25  # generated cases per operation in the main test
QUICK_EXAMPLES = 10  # in the status-code test


def fuzz_settings(max_examples: int) -> hypothesis.settings:
    return hypothesis.settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        # No shrinking: a failure is reported as found, which keeps the run's length bounded.
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),
    )


def load_schema(*, coverage: bool):
    """The API's OpenAPI document, as the server answers it at /api/openapi.json.

    Built from the same NinjaAPI object at import time, because schemathesis's lazy loader
    (schemathesis.pytest.from_fixture, which could fetch it from the live server) reads
    `request.node._nodeid`, which pytest 9.2 no longer has. The served document is compared
    with this one (test_the_fuzzed_schema_is_the_one_served), so the fuzzer works from
    exactly what clients see.
    """
    from arv.api import api

    config = SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "generation": {"database": "none"},
            "phases": {"examples": {"enabled": False}, "coverage": {"enabled": coverage}},
        }
    )
    return schemathesis.openapi.from_dict(api.get_openapi_schema(), config=config)


schema = load_schema(coverage=True)
quick_schema = load_schema(coverage=False)

# Requests sent, per test, reported when the module is done.
SENT: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def report_request_count(request):
    yield
    if not SENT:
        return
    counts = ", ".join(f"{name}: {count}" for name, count in SENT.items())
    line = f"schemathesis sent {sum(SENT.values())} requests ({counts})"
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    with capture.global_and_fixture_disabled():
        reporter.write_line(f"\n{line}")


@pytest.fixture
def fuzz_world(transactional_db, staff_user, make_company, tmp_path):
    """A staff bearer token and one real object of each kind for the fuzzer to hit."""
    from arv.auth.tokens import token_issue
    from storage.models import StorageConnection, StorageFolder

    _, token = token_issue(user=staff_user)
    connection = StorageConnection.objects.create(name="Fuzz disk", provider="local_disk", base_path=str(tmp_path))
    company = make_company("Fuzz Co", storage_connection=connection)
    StorageFolder.objects.create(company=company, name="Fuzz folder", path="/fuzz")
    return {
        "headers": {"Authorization": f"Bearer {token}"},
        "ids": {"company_id": company.id, "connection_id": connection.id},
        # Every other valid case is pointed at the real objects; the rest keep their generated ids.
        "alternate": itertools.cycle([True, False]),
    }


def send(case, live_url: str, fuzz_world, test_name: str, checks) -> None:
    if case.path_parameters and case.meta.generation.mode.is_positive and next(fuzz_world["alternate"]):
        case.path_parameters = {
            name: fuzz_world["ids"].get(name, value) for name, value in case.path_parameters.items()
        }
    SENT[test_name] += 1
    case.call_and_validate(base_url=live_url, headers=fuzz_world["headers"], checks=checks, timeout=30)


def test_the_fuzzed_schema_is_the_one_served(live_url):
    from arv.api import api

    served = httpx.get(f"{live_url}/api/openapi.json", timeout=30)
    assert served.status_code == 200
    assert served.json() == json.loads(json.dumps(api.get_openapi_schema()))


@schema.parametrize()
@fuzz_settings(MAX_EXAMPLES)
def test_fuzzed_requests_get_no_server_error_and_answers_match_the_schema(case, live_url, fuzz_world):
    checks = [not_a_server_error, response_schema_conformance, content_type_conformance]
    send(case, live_url, fuzz_world, "no server error", checks)


@quick_schema.parametrize()
@fuzz_settings(QUICK_EXAMPLES)
def test_fuzzed_answers_use_documented_status_codes(case, live_url, fuzz_world):
    send(case, live_url, fuzz_world, "status codes documented", [not_a_server_error, status_code_conformance])
