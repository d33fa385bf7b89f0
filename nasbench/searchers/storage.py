"""Where a multi-trial study lives: an Optuna RDB storage (SQLite, PostgreSQL, MySQL).

Every run of a multi-trial searcher is an Optuna study in a storage: by default the
SQLite file ``study.db`` inside the run directory (embedded, nothing to start); with
``--storage URL`` (``postgresql://USER@HOST/DB``, ``mysql://...``, ``sqlite:///...``) a
real database that workers on other machines reach (``nasbench worker``). The study is
named after the run (the run directory's name) and carries, as user attributes, what a
worker needs to join it: the run's config (:data:`ATTR_CONFIG`), the run directory
(:data:`ATTR_RUN`) and the budget (:data:`ATTR_TRIALS`).

Storages are Optuna's :class:`~optuna.storages.RDBStorage` with heartbeats: a process
records a heartbeat for its trial in flight every ``heartbeat_s`` seconds, and any
process fails a trial whose heartbeat is older than ``grace_s`` seconds
(:func:`optuna.storages.fail_stale_trials`), and its stale-trial callback
(:func:`retry_trial`) puts its parameters back in the study as a waiting trial, which
the next ``ask`` takes up. A killed worker loses only its trial in flight, and that one
is asked again.
"""

from __future__ import annotations

import contextlib
import threading
import time
import warnings
from pathlib import Path

from nasbench.errors import UserError

#: the SQLite file of a run's study, inside its run directory
STUDY_FILE = "study.db"
#: study user attributes: the run's config dict, the run directory, the budget
ATTR_CONFIG = "nasbench:config"
ATTR_RUN = "nasbench:run"
ATTR_TRIALS = "nasbench:trials"
SCHEMES = ("sqlite", "postgresql", "mysql")


#: user attributes of one attempt at a trial (trials.py): not carried to its retry
ATTEMPT_ATTRS = ("claim", "result", "cached_from", "deferred", "pruned")


def retry_trial(study, trial) -> None:
    """Puts a failed trial's parameters back in ``study`` as a waiting trial, which the
    next ``ask`` takes up - Optuna's retry of a stale trial
    (``RetryHeartbeatStaleTrialCallback``: the system attributes kept, the first failed
    trial's number in ``failed_trial``), without the failed attempt's own attributes
    (:data:`ATTEMPT_ATTRS`: its claim must not hold the cell while nobody evaluates
    it)."""
    import optuna
    system = {"failed_trial": trial.number, "retry_history": [], **trial.system_attrs}
    system["retry_history"] = [*system["retry_history"], trial.number]
    study.add_trial(optuna.trial.create_trial(
        state=optuna.trial.TrialState.WAITING, params=trial.params,
        distributions=trial.distributions,
        user_attrs={k: v for k, v in trial.user_attrs.items() if k not in ATTEMPT_ATTRS},
        system_attrs=system))


def default_url(run_dir: str | Path) -> str:
    """Returns the URL of a run's own SQLite study (``RUN/study.db``, absolute)."""
    return f"sqlite:///{(Path(run_dir) / STUDY_FILE).resolve()}"


def show_url(url: str) -> str:
    """Returns ``url`` with its password masked (for logs and messages)."""
    try:
        from sqlalchemy.engine import make_url
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown as given
        return url


def _driver_url(url: str):
    """Returns the SQLAlchemy URL object of ``url`` with a PostgreSQL driver that is
    installed (psycopg2, else psycopg 3) when the URL names none; raises UserError for
    an unparsable URL or another database."""
    import importlib.util

    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError
    try:
        u = make_url(url)
    except ArgumentError:
        raise UserError(f"--storage {url!r} is not a database URL (e.g. "
                        f"postgresql://USER@HOST/DB or sqlite:///PATH)") from None
    backend = u.get_backend_name()
    if backend == "postgres":                       # the old alias (Heroku-style URLs)
        u, backend = u.set(drivername="postgresql"), "postgresql"
    if backend not in SCHEMES:
        raise UserError(f"--storage must be a {', '.join(SCHEMES)} URL, got "
                        f"{show_url(url)}")
    if u.drivername == "postgresql":
        for mod in ("psycopg2", "psycopg"):
            if importlib.util.find_spec(mod) is not None:
                return u.set(drivername=f"postgresql+{mod}")
        raise UserError("--storage postgresql:// needs a PostgreSQL driver: pip install "
                        "'nasbench[postgres]' (psycopg2-binary)")
    return u


def check_url(url: str) -> None:
    """Raises UserError unless ``url`` is a SQLite, PostgreSQL or MySQL URL whose
    driver is installed (nothing is connected)."""
    _driver_url(url)


def open_storage(url: str, heartbeat_s: int = 10, grace_s: int = 60):
    """Returns Optuna's RDB storage at ``url`` with heartbeats every ``heartbeat_s``
    seconds, trials silent for ``grace_s`` seconds failed and re-asked (Optuna's retry
    callback); tables are created when absent. Raises UserError (one line) for a bad
    URL, a missing driver or a database that cannot be reached."""
    import optuna
    from sqlalchemy.exc import SQLAlchemyError
    u = _driver_url(url)
    kw: dict = {}
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            parent = Path(u.database).expanduser().parent
            if not parent.is_dir():
                raise UserError(f"--storage {url}: no folder {parent}")
        kw = {"connect_args": {"timeout": 60}}      # wait for another process's write
    elif u.get_backend_name() == "postgresql" and "psycopg2" in u.drivername:
        kw = {"connect_args": {"connect_timeout": 10}}
    for attempt in range(3):
        try:
            with warnings.catch_warnings():             # heartbeats are "experimental"
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = optuna.storages.RDBStorage(
                    u.render_as_string(hide_password=False), engine_kwargs=kw,
                    heartbeat_interval=heartbeat_s, grace_period=grace_s,
                    heartbeat_stale_trial_callback=retry_trial)
            if u.get_backend_name() == "sqlite":
                _sqlite_wal(storage)
            return storage
        except ModuleNotFoundError as e:
            raise UserError(f"--storage {show_url(url)} needs the Python driver {e.name}: "
                            f"install it (pip install {e.name})") from None
        except SQLAlchemyError as e:
            why = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
            if attempt < 2 and ("already exists" in why or "duplicate key" in why
                                or "UNIQUE constraint failed" in why):
                time.sleep(0.5)                 # another process created the tables
                continue
            raise UserError(f"cannot open the study storage {show_url(url)}: {why}") \
                from None
    raise AssertionError("unreachable")


def _sqlite_wal(storage) -> None:
    """Puts a SQLite study file in write-ahead-log mode (stored in the file: readers do
    not block the writer, so processes on one machine share it with fewer waits) and
    its connections in ``synchronous=NORMAL`` (a commit is not flushed to disk at once:
    a killed process loses nothing, a power cut may lose the last trials)."""
    from sqlalchemy import event, text

    def pragmas(dbapi_conn, _record):
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    with storage.engine.connect() as c:
        c.execute(text("PRAGMA journal_mode=WAL"))
    event.listen(storage.engine, "connect", pragmas)
    storage.engine.dispose()            # the connections opened so far lack the pragma


def study_names(storage) -> list[str]:
    """Returns the names of the studies in ``storage``."""
    import optuna
    return [s.study_name for s in optuna.study.get_all_study_summaries(storage)]


def load_study(storage, name: str, url: str, sampler=None, pruner=None):
    """Returns the study ``name`` of ``storage`` (opened at ``url``, for messages) with
    ``sampler`` and ``pruner``; raises UserError naming the studies there when there is
    none."""
    import optuna
    try:
        return optuna.load_study(study_name=name, storage=storage, sampler=sampler,
                                 pruner=pruner)
    except KeyError:
        names = study_names(storage)
        shown = ", ".join(names[-5:]) or "none"
        more = f" and {len(names) - 5} older" if len(names) > 5 else ""
        raise UserError(f"no study {name!r} in {show_url(url)} (studies there: "
                        f"{shown}{more})") from None


@contextlib.contextmanager
def heartbeat(storage, trial_id: int):
    """Records heartbeats of trial ``trial_id`` in ``storage`` for the block: one now,
    then one every heartbeat interval from a thread (``storage`` None: nothing, an
    in-memory study has no other process to tell)."""
    if storage is None:
        yield
        return
    storage.record_heartbeat(trial_id)          # before anything can be claimed
    stop = threading.Event()

    def beat():
        while not stop.wait(storage.get_heartbeat_interval()):
            storage.record_heartbeat(trial_id)

    t = threading.Thread(target=beat, name=f"heartbeat-{trial_id}", daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join()
