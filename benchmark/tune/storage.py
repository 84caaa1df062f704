"""Optuna storages (RDB with heartbeats and retried stale trials for shared-study
workers), the lock that keeps a shared study's budget exact, and the heartbeat thread."""

from __future__ import annotations

import hashlib

from benchmark.errors import UserError
from benchmark.tracking import redact


def _storage(url: str, tune=None):
    """``_make_storage``, retried: workers starting together on a fresh database race to
    create Optuna's tables, and all but one see the others' rows."""
    import time

    for attempt in range(5):
        try:
            return _make_storage(url, tune)
        except Exception as err:  # IntegrityError, OperationalError (locked), ...
            if attempt == 4 or "sqlalchemy" not in type(err).__module__:
                raise
            time.sleep(0.5 + attempt)


def _make_storage(url: str, tune=None):
    """An Optuna storage for ``url``: RDB URLs (sqlite, postgresql, mysql) get an
    RDBStorage, with heartbeats and the retry of dead workers' trials when ``tune`` (the
    shared-study settings) is given; anything else goes to Optuna as it is."""
    import optuna

    if "://" not in url or url.split("://", 1)[0].split("+")[0] not in _RDB_DIALECTS:
        return url
    kwargs: dict = {}
    if url.startswith("sqlite"):
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 120}}
    else:
        kwargs["engine_kwargs"] = {"pool_pre_ping": True}
    if tune is not None:
        import warnings

        retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
        key = "heartbeat_stale_trial_callback"
        if retry is None:  # Optuna < 4.9
            retry, key = optuna.storages.RetryFailedTrialCallback, "failed_trial_callback"
        kwargs.update(
            heartbeat_interval=tune.heartbeat_seconds,
            grace_period=max(tune.grace_seconds, tune.heartbeat_seconds + 1),
            **{key: retry(max_retry=tune.retries)},
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # heartbeats are "experimental"
            return optuna.storages.RDBStorage(url, **kwargs)
    return optuna.storages.RDBStorage(url, **kwargs)


_RDB_DIALECTS = frozenset(
    {"sqlite", "postgresql", "postgres", "mysql", "mariadb", "oracle", "mssql"}
)


def _heartbeat(storage, trial_id: int, tune, stop) -> None:
    import optuna

    if not isinstance(storage, optuna.storages.RDBStorage):
        return
    while not stop.wait(tune.heartbeat_seconds):
        try:
            storage.record_heartbeat(trial_id)
        except Exception:  # noqa: BLE001 - a missed beat; the grace period allows several
            pass


class _ClaimLock:
    """A lock shared by every worker of one study, held in the storage itself: a
    PostgreSQL advisory lock (or MySQL's GET_LOCK), a file lock beside a SQLite file.
    Released by the database / the kernel when its holder dies."""

    def __init__(self, url: str, study_name: str) -> None:
        self.url, self.name = url, study_name
        self.key = int.from_bytes(hashlib.sha256(study_name.encode()).digest()[:8], "big") >> 1
        dialect = url.split("://", 1)[0].split("+")[0] if "://" in url else ""
        self.kind = {"postgresql": "pg", "postgres": "pg", "mysql": "my", "mariadb": "my"}.get(
            dialect, "file" if dialect == "sqlite" else None
        )
        if self.kind is None:
            raise UserError(
                f"tune.storage {redact(url)}: shared-study workers need a sqlite, postgresql "
                "or mysql storage (for the lock that keeps the budget exact)"
            )
        self._conn = self._file = None

    def __enter__(self):
        import sqlalchemy

        if self.kind == "file":
            import fcntl

            db = sqlalchemy.engine.make_url(self.url).database or "optuna.db"
            if self._file is None:
                self._file = open(f"{db}.claim.lock", "a")  # noqa: SIM115
            fcntl.flock(self._file, fcntl.LOCK_EX)
            return self
        if self._conn is None:
            engine = sqlalchemy.create_engine(self.url, poolclass=sqlalchemy.pool.NullPool)
            self._conn = engine.connect()
        if self.kind == "pg":
            self._conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": self.key})
        else:
            self._conn.execute(
                sqlalchemy.text("SELECT GET_LOCK(:k, -1)"), {"k": f"optuna-{self.key}"}
            )
        self._conn.commit()
        return self

    def __exit__(self, *exc) -> None:
        import sqlalchemy

        if self.kind == "file":
            import fcntl

            fcntl.flock(self._file, fcntl.LOCK_UN)
        elif self.kind == "pg":
            self._conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            self._conn.commit()
        else:
            self._conn.execute(
                sqlalchemy.text("SELECT RELEASE_LOCK(:k)"), {"k": f"optuna-{self.key}"}
            )
            self._conn.commit()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._file is not None:
            self._file.close()
