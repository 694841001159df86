"""Credentials never leak, test servers stay local and private, and work stays bounded."""

from __future__ import annotations

from collections.abc import Iterator
import logging
import os
from pathlib import Path
import pickle
import stat
import time
import traceback
from typing import cast

import _pg
import _support
import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState
import psycopg2
import pytest

from optuna_transfer import redact_url
from optuna_transfer import TransferTPESampler
from optuna_transfer import WarmStartGridSampler


PASSWORD = _pg.PASSWORD


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    optuna.logging.enable_propagation()
    optuna.logging.set_verbosity(optuna.logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    yield caplog
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.logging.disable_propagation()


def _no_secret(*texts: object) -> None:
    for text in texts:
        assert PASSWORD not in str(text), text


def _full_error(info: pytest.ExceptionInfo[BaseException]) -> str:
    return "".join(traceback.format_exception(info.value))


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://user:s3cret@127.0.0.1:5432/db", "postgresql://user:***@127.0.0.1:5432/db"),
        ("postgresql+psycopg2://u:s3cret@h/db", "postgresql+psycopg2://u:***@h/db"),
        ("mysql+pymysql://u:s3c:ret@h:3306/db", "mysql+pymysql://u:***@h:3306/db"),
        ("postgresql://u:s3cr%40et@h/db", "postgresql://u:***@h/db"),
        ("postgresql://:s3cret@h/db", "postgresql://:***@h/db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("sqlite:///tmp/x.db", "sqlite:///tmp/x.db"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_url_query_password() -> None:
    # BUG (optuna_transfer/_redact.py, redact_url): libpq/SQLAlchemy also take the password
    # as a query parameter; it is shown verbatim today.
    shown = redact_url("postgresql://u@127.0.0.1/db?password=s3cret&sslmode=require")
    _no_secret(shown)
    assert shown == "postgresql://u@127.0.0.1/db?password=***&sslmode=require"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        # Credential-bearing query keys of libpq, the MySQL drivers (PyMySQL, mysqlclient,
        # mysql-connector) and SQLAlchemy dialects; keys are matched case-insensitively.
        ("postgresql://bob:pw@host/db?passwd=hunter2",
         "postgresql://bob:***@host/db?passwd=***"),
        ("mysql+pymysql://u@h/db?password=s3cret", "mysql+pymysql://u@h/db?password=***"),
        ("mysql+mysqldb://u@h/db?charset=utf8&passwd=s3cret",
         "mysql+mysqldb://u@h/db?charset=utf8&passwd=***"),
        ("mssql+pyodbc://u@h/db?PWD=s3cret&driver=x", "mssql+pyodbc://u@h/db?PWD=***&driver=x"),
        ("mysql+mysqlconnector://u@h/db?password1=a&password2=b&password3=c",
         "mysql+mysqlconnector://u@h/db?password1=***&password2=***&password3=***"),
        ("postgresql://u@h/db?sslpassword=s3cret&sslkey=/k.pem",
         "postgresql://u@h/db?sslpassword=***&sslkey=/k.pem"),
        ("mysql+pymysql://u@h/db?ssl_key_password=s3cret",
         "mysql+pymysql://u@h/db?ssl_key_password=***"),
        ("postgresql://u@h/db?oauth_client_secret=s3cret&oauth_client_id=app",
         "postgresql://u@h/db?oauth_client_secret=***&oauth_client_id=app"),
        ("mssql+pyodbc://?odbc_connect=DRIVER%3Dx%3BPWD%3Ds3cret",
         "mssql+pyodbc://?odbc_connect=***"),
        ("postgresql://u@h/db?Password=s3cret", "postgresql://u@h/db?Password=***"),
        ("postgresql://u@h/db?pass%77ord=s3cret", "postgresql://u@h/db?pass%77ord=***"),
        ("postgresql://u@h/db?password=s3c#ret&sslmode=require",
         "postgresql://u@h/db?password=***&sslmode=require"),
        # '@' in a non-credential value stays intact, and does not hide the host.
        ("postgresql://u:pw@h/db?sslkey=/a@b", "postgresql://u:***@h/db?sslkey=/a@b"),
        ("postgresql://u@h/db?sslkey=/a@b", "postgresql://u@h/db?sslkey=/a@b"),
        ("postgresql://u:pw@h/db?application_name=bob@laptop&password=x",
         "postgresql://u:***@h/db?application_name=bob@laptop&password=***"),
        # Look-alikes that hold no secret are shown.
        ("postgresql://u@h/db?passfile=/home/u/.pgpass&user=password",
         "postgresql://u@h/db?passfile=/home/u/.pgpass&user=password"),
        # An unencoded '@' or '?' in the password: all of it is hidden.
        ("postgresql://u:p@ss@h/db?sslkey=/a@b", "postgresql://u:***@h/db?sslkey=/a@b"),
        ("postgresql://u:p?ss@h/db", "postgresql://u:***@h/db"),
        ("sqlite:////tmp/a@b.db", "sqlite:////tmp/a@b.db"),
    ],
)
def test_redact_url_query_credentials(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_cause_of_a_storage_error_is_kept_without_the_password() -> None:
    url = f"postgresql+psycopg2://user:{PASSWORD}@db.internal:5432/hpo?sslpassword={PASSWORD}x"

    class _Unreachable(optuna.storages.InMemoryStorage):
        def get_study_id_from_name(self, study_name: str) -> int:
            # Some drivers echo the connection string they were given.
            raise ConnectionError(f"cannot reach {url} (password {PASSWORD})")

    storage = _Unreachable()
    storage.url = url  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="Could not") as info:
        TransferTPESampler.from_storage(storage, ["src"])
    msg = str(info.value)
    shown = "postgresql+psycopg2://user:***@db.internal:5432/hpo"
    assert f"ConnectionError: cannot reach {shown}" in msg
    assert "sslpassword=***" in msg
    _no_secret(_full_error(info))


def test_redact_storage_object(tmp_path: Path) -> None:
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'a.db'}")
    assert redact_url(storage) == storage.url
    assert redact_url(optuna.storages.InMemoryStorage()) == "InMemoryStorage"


@pytest.mark.parametrize("name", _support.SAMPLER_NAMES)
def test_unreachable_server_error_is_redacted(
    name: str, all_logs: pytest.LogCaptureFixture
) -> None:
    # A closed port on localhost: connecting fails fast.
    url = f"postgresql+psycopg2://user:{PASSWORD}@127.0.0.1:{_closed_port()}/db"
    with pytest.raises(ValueError, match="Could not open storage") as info:
        _support.FROM_STORAGE[name](url, ["src"])
    assert "user:***@127.0.0.1" in str(info.value)
    _no_secret(_full_error(info), *[r.getMessage() for r in all_logs.records])


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
@pytest.mark.parametrize("name", _support.SAMPLER_NAMES)
def test_postgres_password_never_printed_logged_or_recorded(
    name: str, pg_server: _pg.Server, all_logs: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = pg_server.url()
    assert PASSWORD in url
    src_name = f"sec-src-{name}"
    if src_name not in optuna.get_all_study_names(url):
        _support.finished_study(_support.xy_objective, 12, storage=url, study_name=src_name)

    # Unknown study name: the error shows the redacted URL and what is there.
    with pytest.raises(ValueError, match="No study named 'nope'") as info:
        _support.FROM_STORAGE[name](url, ["nope"])
    assert "ot_user:***@127.0.0.1" in str(info.value)
    _no_secret(_full_error(info))

    # Wrong password: the error is redacted too (and does not echo the wrong password).
    bad = url.replace(PASSWORD, "wr0ngpw")
    with pytest.raises(ValueError, match="Could not open storage") as info:
        _support.FROM_STORAGE[name](bad, [src_name])
    assert "wr0ngpw" not in _full_error(info)

    sampler = _support.FROM_STORAGE[name](url, [src_name], seed=0)
    target = optuna.create_study(study_name=f"sec-tgt-{name}", storage=url, sampler=sampler)
    target.optimize(_support.xy_objective, n_trials=6)
    target.set_user_attr("note", "done")
    storage = target._storage
    recorded: list[object] = []
    for summary in optuna.get_all_study_summaries(url):
        study_id = storage.get_study_id_from_name(summary.study_name)
        recorded += [storage.get_study_system_attrs(study_id), summary.user_attrs]
    for t in target.trials:
        recorded += [t.system_attrs, t.user_attrs]
    out, err = capsys.readouterr()
    source_names = cast(TransferTPESampler, sampler).source_names
    _no_secret(*recorded, out, err, repr(sampler), source_names)
    _no_secret(*[r.getMessage() for r in all_logs.records])
    assert PASSWORD.encode() not in pickle.dumps(sampler)


@pytest.mark.slow
def test_postgres_server_is_local_and_private(pg_server: _pg.Server) -> None:
    assert pg_server.show("listen_addresses") == "127.0.0.1"
    assert pg_server.show("password_encryption") == "scram-sha-256"
    # Only the owner may read the data directory.
    assert stat.S_IMODE(pg_server.data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(pg_server.data_dir.parent.stat().st_mode) == 0o700
    # No password, no access, even from localhost.
    with pytest.raises(psycopg2.OperationalError, match="password"):
        psycopg2.connect(host="127.0.0.1", port=pg_server.port, user=_pg.USER, dbname=_pg.DB,
                         password="")
    ip = _non_loopback_ip()
    if ip is not None:
        with pytest.raises(psycopg2.OperationalError):
            psycopg2.connect(host=ip, port=pg_server.port, user=_pg.USER,
                             password=PASSWORD, dbname=_pg.DB, connect_timeout=5)


def _non_loopback_ip() -> str | None:
    import socket

    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET: no packet is sent for UDP connect
            ip = str(s.getsockname()[0])
    except OSError:
        return None
    return None if ip.startswith("127.") else ip


def test_temp_files_are_private(tmp_path: Path) -> None:
    # The suite keeps its databases and journals under pytest's tmp_path.
    assert stat.S_IMODE(tmp_path.stat().st_mode) & 0o077 == 0
    assert os.stat(tmp_path).st_uid == os.geteuid()


@pytest.mark.parametrize("name", _support.SAMPLER_NAMES)
def test_huge_source_is_subsampled_with_warning_and_stays_fast(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    _support.quiet()
    caplog.set_level(logging.WARNING, logger=_support.LOGGER_NAME)
    dist: dict[str, BaseDistribution] = {
        "x": FloatDistribution(0, 1), "y": FloatDistribution(0, 1)
    }
    n = 30_000
    trials = [
        optuna.trial.create_trial(
            params={"x": (i * 7919 % n) / n, "y": (i * 104729 % n) / n},
            distributions=dist,
            value=float((i * 7919 % n) / n - 0.3) ** 2,
            state=TrialState.COMPLETE,
        )
        for i in range(n)
    ]
    start = time.perf_counter()
    sampler = _support.SAMPLERS[name](trials, seed=0, max_source_trials=500)
    study = optuna.create_study(sampler=sampler)
    study.optimize(
        lambda t: (t.suggest_float("x", 0, 1) - 0.3) ** 2 + t.suggest_float("y", 0, 1),
        n_trials=15,
    )
    elapsed = time.perf_counter() - start
    msgs = _support.records(caplog)
    assert any(f"has {n} usable trials" in m and "max_source_trials=500" in m for m in msgs)
    assert elapsed < 20.0, elapsed
    # The best source trial survives subsampling: it is the first zero-shot configuration.
    assert study.trials[0].params["x"] == pytest.approx(0.3, abs=1e-3)


@pytest.mark.parametrize("name", _support.SAMPLER_NAMES)
def test_default_cap_bounds_sampling_time(name: str, caplog: pytest.LogCaptureFixture) -> None:
    _support.quiet()
    caplog.set_level(logging.WARNING, logger=_support.LOGGER_NAME)
    dist: dict[str, BaseDistribution] = {"x": FloatDistribution(0, 1)}
    trials = [
        optuna.trial.create_trial(params={"x": i / 30_000}, distributions=dist, value=i % 101)
        for i in range(30_000)
    ]
    sampler = _support.SAMPLERS[name](trials, seed=0)
    assert any("has 30000 usable trials" in m for m in _support.records(caplog))
    study = optuna.create_study(sampler=sampler)
    start = time.perf_counter()
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=10)
    assert time.perf_counter() - start < 20.0


# ---------------------------------------------------------------------------------------------
# Grid samplers.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", _support.GRID_SAMPLER_NAMES)
def test_grid_of_1e8_points_is_refused_fast(name: str) -> None:
    source = _support.finished_study(_support.xy_objective, 5)
    space = {f"p{i}": list(range(10)) for i in range(8)}  # 10**8 points
    start = time.perf_counter()
    with pytest.raises(ValueError) as info:
        _support.GRID_SAMPLERS[name](source, space)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, elapsed
    msg = str(info.value)
    assert "The grid has 100,000,000 points, more than the 10,000,000" in msg
    assert "neighbourhood_grid" in msg  # says how to fix it


@pytest.mark.parametrize("name", _support.GRID_SAMPLER_NAMES)
def test_grid_with_huge_columns_is_refused_fast(name: str) -> None:
    # Two long columns (10**4 values each): the size check, not the work, decides.
    source = _support.finished_study(_support.xy_objective, 5)
    space = {"x": [float(i) for i in range(10_000)], "y": list(range(10_000))}
    start = time.perf_counter()
    with pytest.raises(ValueError, match="The grid has 100,000,000 points"):
        _support.GRID_SAMPLERS[name](source, space)
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("name", _support.GRID_SAMPLER_NAMES)
def test_grid_huge_source_is_subsampled_with_warning_and_stays_fast(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    _support.quiet()
    optuna.logging.enable_propagation()
    caplog.set_level(logging.WARNING, logger=_support.LOGGER_NAME)
    dist: dict[str, BaseDistribution] = {"x": FloatDistribution(0, 1)}
    n = 30_000
    trials = [
        optuna.trial.create_trial(
            params={"x": (i * 7919 % n) / n}, distributions=dist,
            value=((i * 7919 % n) / n - 0.3) ** 2,
        )
        for i in range(n)
    ]
    start = time.perf_counter()
    sampler = _support.GRID_SAMPLERS[name](trials, {"x": [0.0, 0.1, 0.2, 0.3, 0.6, 0.9]})
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: (t.suggest_float("x", 0, 1) - 0.3) ** 2)
    elapsed = time.perf_counter() - start
    optuna.logging.disable_propagation()
    # No max_source_trials argument on the grid sampler: the default cap (2000) applies.
    assert any(f"has {n} usable trials" in m for m in _support.records(caplog))
    assert elapsed < 20.0, elapsed
    assert study.trials[0].params["x"] == 0.3  # the best source point survives subsampling
    assert len(study.trials) == 6


@pytest.mark.slow
@pytest.mark.parametrize("name", _support.GRID_SAMPLER_NAMES)
def test_grid_postgres_password_never_printed_logged_or_recorded(
    name: str, pg_server: _pg.Server, all_logs: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = pg_server.url()
    assert PASSWORD in url
    src_name = f"gsec-src-{name}"
    if src_name not in optuna.get_all_study_names(url):
        _support.finished_study(_support.xy_objective, 12, storage=url, study_name=src_name)
    space = {"x": [-1.0, 0.0, 1.0], "y": [0.0, 1.0]}
    sampler = _support.grid_from_storage(name, url, [src_name], space, seed=0)
    target = optuna.create_study(study_name=f"gsec-tgt-{name}", storage=url, sampler=sampler)
    target.optimize(_support.xy_objective)  # the whole grid, then the sampler stops the study
    target.optimize(_support.xy_objective, n_trials=1)  # exhausted: logs its repeat warning
    assert len(target.trials) == 7
    assert any("re-evaluating" in r.getMessage() for r in all_logs.records)
    storage = target._storage
    recorded: list[object] = []
    for summary in optuna.get_all_study_summaries(url):
        study_id = storage.get_study_id_from_name(summary.study_name)
        recorded += [storage.get_study_system_attrs(study_id), summary.user_attrs]
    for t in target.trials:
        recorded += [t.system_attrs, t.user_attrs]
    out, err = capsys.readouterr()
    ranked_grid = cast(WarmStartGridSampler, sampler).ranked_grid()
    _no_secret(*recorded, out, err, repr(sampler), ranked_grid)
    _no_secret(*[r.getMessage() for r in all_logs.records])
    assert PASSWORD.encode() not in pickle.dumps(sampler)
