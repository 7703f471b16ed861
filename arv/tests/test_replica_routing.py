"""Read replicas' parts that need no server (issue 19, item 3): settings, WAL positions, the
position a client sends back, the monitor's decisions and its log lines. The routing on real
servers: test_replicas.py."""

from __future__ import annotations

import logging

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from arv.db import read_after
from arv.db.config import ConfigurationError, ReplicaSettings, replicas_from_env, split_urls
from arv.db.replicas import ReplicaMonitor, ReplicaRouter, lsn_text, lsn_value, parse_lsn

POSTGRES = {"ENGINE": "django.db.backends.postgresql"}


# -- settings -------------------------------------------------------------------------------------


def test_replica_urls_become_databases_that_mirror_default_in_tests(monkeypatch, settings):
    monkeypatch.setenv(
        "DATABASE_REPLICA_URLS", "postgres://u@127.0.0.1:5433/arv, postgres://u@127.0.0.1:5434,127.0.0.1:5435/arv"
    )
    monkeypatch.setenv("DB_REPLICA_MAX_LAG", "2.5")
    databases, replicas = replicas_from_env(settings.DATABASE_POOL, POSTGRES)
    assert list(databases) == ["replica_1", "replica_2"]
    assert replicas == ReplicaSettings(aliases=("replica_1", "replica_2"), max_lag=2.5, wait_ms=20)
    assert databases["replica_2"]["HOST"] == "127.0.0.1,127.0.0.1"  # a multi-host replica stays one
    assert all(db["TEST"] == {"MIRROR": "default"} for db in databases.values())
    assert all("target_session_attrs" not in db["OPTIONS"] for db in databases.values())


def test_no_replica_urls_no_replicas(monkeypatch, settings):
    monkeypatch.delenv("DATABASE_REPLICA_URLS", raising=False)
    databases, replicas = replicas_from_env(settings.DATABASE_POOL, POSTGRES)
    assert databases == {} and not replicas.enabled


@pytest.mark.parametrize(
    "primary, urls, problem",
    [
        (
            {"ENGINE": "django.db.backends.sqlite3"},
            "postgres://u@127.0.0.1:5433/arv",
            "DATABASE_REPLICA_URLS needs PostgreSQL: read replicas are PostgreSQL standbys, and DATABASE_URL "
            "names SQLite",
        ),
        (POSTGRES, "sqlite:///x.sqlite3", "DATABASE_REPLICA_URLS entry 1 is not a PostgreSQL URL (postgres://...)"),
        (
            POSTGRES,
            "postgres://u@127.0.0.1:5433/arv,postgres://u@127.0.0.1:x/arv",
            "DATABASE_REPLICA_URLS entry 2 has a port that is not a number from 1 to 65535: 'x'",
        ),
    ],
)
def test_replica_urls_that_cannot_work_are_a_one_line_startup_error(monkeypatch, settings, primary, urls, problem):
    monkeypatch.setenv("DATABASE_REPLICA_URLS", urls)
    with pytest.raises(ConfigurationError) as error:
        replicas_from_env(settings.DATABASE_POOL, primary)
    assert str(error.value) == problem


def test_a_multi_host_url_among_several_is_not_split_at_its_hosts():
    assert split_urls("postgres://a:1,b:2/x,postgresql://c/y, ,") == ["postgres://a:1,b:2/x", "postgresql://c/y"]


# -- WAL positions ----------------------------------------------------------------------------------


def test_positions_compare_as_postgresql_compares_them():
    assert lsn_value("16/B374D848") == 0x16B374D848
    assert lsn_text(lsn_value("16/B374D848")) == "16/B374D848"
    assert lsn_value("0/FFFFFFFF") < lsn_value("1/0") < lsn_value("1/10")


@pytest.mark.parametrize("text", ["", "abc", "1/2/3", "G/0", "123456789/0", "0/", "/0", "0/0 junk"])
def test_what_is_not_a_position_is_refused(text):
    assert parse_lsn(text) is None


# -- what a client sends back -----------------------------------------------------------------------


def test_the_later_of_header_and_cookie_counts_and_a_forged_cookie_none():
    given = HttpResponse()
    read_after.give_position(given, None, lsn_value("0/3000"), browser=True)
    assert given[read_after.HEADER] == "0/3000"
    cookie = given.cookies[read_after.COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"

    factory = RequestFactory()
    request = factory.get("/api/companies", HTTP_ARV_READ_AFTER="0/2000")
    request.COOKIES[read_after.COOKIE] = cookie.value
    assert read_after.requested_position(request) == lsn_value("0/3000")

    forged = factory.get("/api/companies", HTTP_ARV_READ_AFTER="0/2000")
    forged.COOKIES[read_after.COOKIE] = "FFFF/0:forged-signature"
    assert read_after.requested_position(forged) == lsn_value("0/2000")
    assert read_after.requested_position(factory.get("/api/companies")) is None


def test_an_api_client_gets_the_header_and_no_cookie():
    answer = HttpResponse()
    read_after.give_position(answer, RequestFactory().post("/api/companies"), 0x3000, browser=False)
    assert answer[read_after.HEADER] == "0/3000" and read_after.COOKIE not in answer.cookies


def test_a_header_that_is_not_a_position_is_bad_input():
    request = RequestFactory().get("/api/companies", HTTP_ARV_READ_AFTER="yesterday")
    with pytest.raises(read_after.BadPosition):
        read_after.requested_position(request)


# -- the router and the monitor -------------------------------------------------------------------------


def test_migrations_run_on_the_primary_only():
    router = ReplicaRouter()
    assert router.allow_migrate("default", "companies") and not router.allow_migrate("replica_1", "companies")
    assert router.db_for_read(None) == router.db_for_write(None) == "default"  # off the workers: the primary


@pytest.fixture
def monitor(settings) -> ReplicaMonitor:
    settings.DATABASE_REPLICAS = ReplicaSettings(aliases=("replica_1",), max_lag=5.0)
    return ReplicaMonitor()


def _lines(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "arv.db"]


def test_a_lagging_replica_is_skipped_in_one_line_and_its_return_in_one(monitor, caplog):
    caplog.set_level(logging.INFO, logger="arv.db")
    monitor.observed("replica_1", True, "0/100", 0.2)
    assert monitor.choose(None) == "replica_1"
    for lag in (6.0, 7.5, 9.0):  # still lagging: no more lines
        monitor.observed("replica_1", True, "0/100", lag)
    assert monitor.choose(None) is None
    monitor.observed("replica_1", True, "0/200", 0.0)
    monitor.observed("replica_1", True, "0/200", 0.0)
    lines = _lines(caplog)
    assert len(lines) == 3, lines
    assert lines[0] == "replica replica_1 (localhost:5432) in use: replay lag 0.2s"
    assert lines[1].startswith("replica replica_1 (localhost:5432) skipped: replay lag 6.0s over DB_REPLICA_MAX_LAG=5s")
    assert lines[2].startswith("replica replica_1 (localhost:5432) back in use after ")


@pytest.mark.parametrize(
    "found, reason",
    [
        ((False, None, None), "it is not a standby (not in recovery)"),
        ((True, "0/100", None), "its replay lag is unknown (nothing replayed yet)"),
    ],
)
def test_a_server_that_is_no_usable_standby_is_skipped(monitor, caplog, found, reason):
    monitor.observed("replica_1", *found)
    assert monitor.choose(None) is None
    assert reason in _lines(caplog)[-1]


def test_an_unreachable_replica_is_skipped_until_seen_again(monitor):
    monitor.observed("replica_1", True, "0/100", 0.0)
    monitor.unreachable("replica_1", OSError("refused"))
    assert monitor.choose(None) is None
    monitor.observed("replica_1", True, "0/100", 0.0)
    assert monitor.choose(None) == "replica_1"


def test_a_read_after_a_position_prefers_a_replica_known_to_have_replayed_it(monitor):
    monitor.observed("replica_1", True, "0/100", 0.0)
    assert monitor.replayed("replica_1", lsn_value("0/100"))
    assert not monitor.replayed("replica_1", lsn_value("0/101"))  # to be checked on the replica first
    assert monitor.choose(lsn_value("0/101")) == "replica_1"
    assert monitor.saw_replay("replica_1", lsn_value("0/50")) == lsn_value("0/100")  # never goes back
