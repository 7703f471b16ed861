"""Configuration from the environment (API.md, "Operator interface")."""

import dataclasses
import subprocess

import pytest
from django.conf import settings
from django.db import connection

from arv.db.config import ConfigurationError, database_from_env, pool_settings_from_env
from testing.servers import in_fresh_django


def _settings_in_subprocess(env: dict[str, str]) -> subprocess.CompletedProcess:
    return in_fresh_django("from django.conf import settings; print(settings.DEBUG)", env)


def test_a_missing_secret_key_with_debug_off_is_a_clear_startup_error():
    result = _settings_in_subprocess({})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_settings_read_the_env_file_arv_env_file_names(tmp_path):
    env_file = tmp_path / "operator.env"
    env_file.write_text("DJANGO_SECRET_KEY=from-the-env-file\nDJANGO_DEBUG=true\n")
    result = _settings_in_subprocess({"ARV_ENV_FILE": str(env_file)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


def test_debug_runs_without_a_secret_key():
    assert _settings_in_subprocess({"DJANGO_DEBUG": "true"}).stdout.strip() == "True"


def test_pool_settings_have_the_documented_defaults(monkeypatch):
    for name in [
        "DB_POOL_SIZE",
        "DB_MAX_OVERFLOW",
        "DB_POOL_TIMEOUT",
        "DB_CONNECT_TIMEOUT",
        "DB_CONN_MAX_AGE",
        "DB_HEALTH_CHECKS",
        "DB_ECHO",
        "DB_RUNNING_JOBS",
        "DB_ACTIVE_WORKERS",
    ]:
        monkeypatch.delenv(name, raising=False)
    pool = pool_settings_from_env()
    assert (pool.size, pool.max_overflow, pool.timeout, pool.connect_timeout, pool.conn_max_age) == (
        20,
        10,
        10,
        5,
        3600,
    )
    assert pool.health_checks is True and pool.echo is False
    assert pool.running_jobs == 8


def test_postgres_url_maps_to_django_settings(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db.example:6543/arv")
    monkeypatch.setenv("DB_CONN_MAX_AGE", "60")
    monkeypatch.setenv("DB_HEALTH_CHECKS", "false")
    monkeypatch.setenv("DB_CONNECT_TIMEOUT", "3")
    monkeypatch.delenv("DB_PGBOUNCER", raising=False)  # set in the PgBouncer pass
    db = database_from_env(tmp_path / "x.sqlite3", pool_settings_from_env())
    assert (db["ENGINE"], db["HOST"], db["PORT"], db["NAME"], db["USER"]) == (
        "arv.db.postgresql",  # Django's, with the role check in its health check (arv.db.postgresql)
        "db.example",
        6543,
        "arv",
        "u",
    )
    assert (db["CONN_MAX_AGE"], db["CONN_HEALTH_CHECKS"], db["OPTIONS"]["connect_timeout"]) == (60, False, 3)
    # Server-side binding and psycopg's prepared statements (not behind PgBouncer).
    assert (db["OPTIONS"]["server_side_binding"], db["OPTIONS"]["prepare_threshold"]) == (True, 5)


def test_the_default_database_is_a_sqlite_file(monkeypatch, tmp_path):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    db = database_from_env(tmp_path / "arv.sqlite3", pool_settings_from_env())
    assert db["ENGINE"] == "django.db.backends.sqlite3"
    assert db["NAME"] == str(tmp_path / "arv.sqlite3")


@pytest.mark.parametrize(
    "name, value", [("DB_POOL_SIZE", "many"), ("DB_POOL_SIZE", "0"), ("DB_HEALTH_CHECKS", "maybe")]
)
def test_bad_values_are_named_in_the_error(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=name):
        pool_settings_from_env()


def test_an_unsupported_database_url_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "mysql://root@localhost/arv")
    with pytest.raises(ConfigurationError):
        database_from_env(tmp_path / "x", pool_settings_from_env())


def test_pgbouncer_mode_avoids_what_transaction_pooling_breaks(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:6432/arv")
    monkeypatch.setenv("DB_PGBOUNCER", "true")
    monkeypatch.delenv("DB_STATEMENT_TIMEOUT", raising=False)
    db = database_from_env(tmp_path / "x", pool_settings_from_env())
    assert db["DISABLE_SERVER_SIDE_CURSORS"] is True
    assert db["OPTIONS"]["prepare_threshold"] is None
    assert "server_side_binding" not in db["OPTIONS"]


def test_pgbouncer_mode_refuses_a_statement_timeout_it_would_drop(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:6432/arv")
    monkeypatch.setenv("DB_PGBOUNCER", "true")
    monkeypatch.setenv("DB_STATEMENT_TIMEOUT", "500")
    with pytest.raises(ConfigurationError, match="ALTER ROLE"):
        database_from_env(tmp_path / "x", pool_settings_from_env())


@pytest.mark.django_db
@pytest.mark.skipif(
    not settings.DATABASE_POOL.pgbouncer, reason="runs in the PgBouncer pass (python -m testing.pgbouncer)"
)
def test_the_pgbouncer_pass_really_goes_through_pgbouncer():
    with connection.cursor() as cursor:
        cursor.execute("SELECT inet_server_port()")
        (server_port,) = cursor.fetchone()
    assert int(connection.settings_dict["PORT"]) != server_port  # connected to pgbouncer, served by PostgreSQL


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ARV_LOG_FORMAT", "xml", "ARV_LOG_FORMAT='xml' must be one of text, json"),
        ("ARV_LOG_LEVEL", "loud", "ARV_LOG_LEVEL='loud' must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ("ARV_ACCESS_LOG", "maybe", "ARV_ACCESS_LOG='maybe' is not a boolean"),
    ],
)
def test_an_unknown_logging_setting_is_a_clear_startup_error(name, value, message):
    result = _settings_in_subprocess({"DJANGO_DEBUG": "true", name: value})
    assert result.returncode != 0
    assert message in result.stderr


def test_logging_settings_take_any_case():
    result = _settings_in_subprocess({"DJANGO_DEBUG": "true", "ARV_LOG_FORMAT": "JSON", "ARV_LOG_LEVEL": "debug"})
    assert result.returncode == 0, result.stderr


def test_db_running_jobs_and_its_old_name_which_warns(monkeypatch):
    from arv.db.checks import check_renamed_variables

    monkeypatch.delenv("DB_RUNNING_JOBS", raising=False)
    monkeypatch.delenv("DB_ACTIVE_WORKERS", raising=False)
    assert check_renamed_variables() == []
    monkeypatch.setenv("DB_RUNNING_JOBS", "4")
    assert pool_settings_from_env().running_jobs == 4 and check_renamed_variables() == []

    monkeypatch.delenv("DB_RUNNING_JOBS")
    monkeypatch.setenv("DB_ACTIVE_WORKERS", "3")  # the old name: still read, with a warning naming the new one
    assert pool_settings_from_env().running_jobs == 3
    [warning] = check_renamed_variables()
    assert warning.id == "arv.W106" and "DB_RUNNING_JOBS" in warning.msg and "DB_ACTIVE_WORKERS" in warning.msg

    monkeypatch.setenv("DB_RUNNING_JOBS", "5")  # both set: the new name wins
    assert pool_settings_from_env().running_jobs == 5


def _postgres(monkeypatch, tmp_path, url: str) -> dict:
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.delenv("DB_PGBOUNCER", raising=False)  # set in the PgBouncer pass
    monkeypatch.delenv("DB_STATEMENT_TIMEOUT", raising=False)
    return database_from_env(tmp_path / "x", pool_settings_from_env())


def test_a_multi_host_url_gives_libpq_its_hosts_ports_and_parameters(monkeypatch, tmp_path):
    db = _postgres(
        monkeypatch,
        tmp_path,
        "postgres://u:p%40ss@127.0.0.1:5432,127.0.0.1:5433/arv?load_balance_hosts=random&connect_timeout=2",
    )
    assert (db["HOST"], db["PORT"], db["NAME"], db["USER"], db["PASSWORD"]) == (
        "127.0.0.1,127.0.0.1",
        "5432,5433",
        "arv",
        "u",
        "p@ss",
    )
    assert db["OPTIONS"]["load_balance_hosts"] == "random"
    assert db["OPTIONS"]["connect_timeout"] == 2  # the URL's, over DB_CONNECT_TIMEOUT
    assert db["OPTIONS"]["target_session_attrs"] == "read-write"  # the primary: only a writable server


def test_the_url_may_choose_another_target_session_attrs(monkeypatch, tmp_path):
    db = _postgres(monkeypatch, tmp_path, "postgresql://u@127.0.0.1:5432,127.0.0.1:5433/arv?target_session_attrs=any")
    assert db["OPTIONS"]["target_session_attrs"] == "any"


def test_a_replica_url_does_not_insist_on_a_writable_server(tmp_path):
    from arv.db.config import database_settings

    pool = dataclasses.replace(settings.DATABASE_POOL, pgbouncer=False)
    db = database_settings("postgres://u@127.0.0.1:5433/arv", pool, variable="DATABASE_REPLICA_URLS", primary=False)
    assert "target_session_attrs" not in db["OPTIONS"]


@pytest.mark.parametrize(
    "url, problem",
    [
        ("postgres://u@127.0.0.1:5432,127.0.0.1:x/arv", "DATABASE_URL has a port that is not a number from 1 to 65535: 'x'"),
        ("postgres://u@127.0.0.1:5432/arv?bogus=1", 'DATABASE_URL is not a PostgreSQL URL libpq accepts: invalid URI query parameter: "bogus"'),
        ("postgres://u@127.0.0.1/arv?target_session_attrs=writable", "DATABASE_URL has target_session_attrs='writable': use one of any, read-write"),
        ("postgres://u@127.0.0.1/arv?load_balance_hosts=roundrobin", "DATABASE_URL has load_balance_hosts='roundrobin': use one of disable, random"),
        ("postgres://u@127.0.0.1:5432,127.0.0.1:5433", "DATABASE_URL names no database"),
        ("postgres://u@127.0.0.1/arv?connect_timeout=soon", "DATABASE_URL has connect_timeout='soon', which is not a whole number"),
        ("sqlite:///arv.sqlite3?target_session_attrs=read-write", "DATABASE_URL names SQLite, which takes no URL parameters (target_session_attrs)"),
    ],
)  # fmt: skip
def test_a_wrong_database_url_is_one_line_naming_the_problem(monkeypatch, tmp_path, url, problem):
    with pytest.raises(ConfigurationError) as refused:
        _postgres(monkeypatch, tmp_path, url)
    message = str(refused.value)
    assert message.startswith(problem)
    assert "\n" not in message


def test_a_password_is_never_in_the_error(monkeypatch, tmp_path):
    with pytest.raises(ConfigurationError) as refused:
        _postgres(monkeypatch, tmp_path, "postgres://u:hunter2secret@127.0.0.1:5432/arv?target_session_attrs=no")
    assert "hunter2secret" not in str(refused.value)


def test_several_hosts_with_pgbouncer_are_a_startup_error(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", "postgres://u@127.0.0.1:6432,127.0.0.1:6433/arv")
    monkeypatch.setenv("DB_PGBOUNCER", "true")
    monkeypatch.delenv("DB_STATEMENT_TIMEOUT", raising=False)
    monkeypatch.delenv("DB_IDLE_IN_TRANSACTION_TIMEOUT", raising=False)
    with pytest.raises(ConfigurationError, match="several hosts, which cannot work with DB_PGBOUNCER"):
        database_from_env(tmp_path / "x", pool_settings_from_env())


def test_a_multi_host_url_refused_at_startup_is_one_line(tmp_path):
    result = _settings_in_subprocess(
        {
            "DJANGO_DEBUG": "true",
            "DATABASE_URL": "postgres://u@127.0.0.1:5432,127.0.0.1:5433/arv?target_session_attrs=x",
        }
    )
    assert result.returncode != 0
    assert "DATABASE_URL has target_session_attrs='x'" in result.stderr.strip().splitlines()[-1]


def test_a_multi_host_url_is_accepted_at_startup():
    result = _settings_in_subprocess(
        {
            "DJANGO_DEBUG": "true",
            "DATABASE_URL": "postgres://u@127.0.0.1:5432,127.0.0.1:5433/arv?target_session_attrs=read-write",
        }
    )
    assert result.returncode == 0, result.stderr


def test_no_production_setting_mounts_the_test_views():
    """The test-only views (testing.urls: they write without authentication) are mounted by
    testing.settings only; the product's settings take no URLconf from the environment."""
    script = (
        "from django.conf import settings; from django.urls import get_resolver;"
        "print(settings.ROOT_URLCONF, sorted({str(p.pattern) for p in get_resolver().url_patterns}))"
    )
    env = {"DJANGO_DEBUG": "true", "ARV_ROOT_URLCONF": "testing.urls"}  # the variable that used to mount them
    run = in_fresh_django(script, env)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("arv.urls ")
    assert "test" not in run.stdout.removeprefix("arv.urls ")
    # ... while the tests' own settings do mount them.
    assert settings.ROOT_URLCONF == "testing.urls"
