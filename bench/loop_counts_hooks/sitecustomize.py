"""Counting hooks for bench/loop_counts.py, loaded by every Python process that has this folder on PYTHONPATH
(and by bench/dispatch_profile.py, which counts in its own process: ``count_database_work``).

With LOOP_COUNTS_DIR set, a process counts its SQL statements (by verb and table; SQLAlchemy's and those
run on libpq by shared.libpq), commits (SQLAlchemy's and shared.db's), dramatiq messages sent and processed
(by actor) and HTTP requests made, and writes them with its CPU time to $LOOP_COUNTS_DIR/<pid>.json every
0.2 s. Hooks are installed as their modules finish loading.

With LOOP_PROFILE set as well, a process whose command line contains it also runs every thread under cProfile,
timed by the thread's CPU clock, and writes the threads' profiles merged to $LOOP_COUNTS_DIR/<pid>.prof every
2 s (``python -m pstats`` reads it). Profiling slows the process a few times: its CPU figure is then not one
to compare.
"""

from __future__ import annotations

import collections
import importlib.abc
import json
import os
import sys
import threading
import time
from typing import Any

_DIR = os.environ.get("LOOP_COUNTS_DIR")
_counts: collections.Counter[str] = collections.Counter()
_lock = threading.Lock()


def _bump(key: str) -> None:
    with _lock:
        _counts[key] += 1


def _table_of(statement: str) -> str:
    words = statement.split()
    upper = [word.upper() for word in words[:60]]
    verb = upper[0] if upper else "?"
    markers = {"UPDATE": ("UPDATE",), "INSERT": ("INTO",), "WITH": ("INTO", "UPDATE", "FROM")}
    for marker in markers.get(verb, ("FROM",)):
        if marker in upper and upper.index(marker) + 1 < len(words):
            return words[upper.index(marker) + 1].strip('"(')
    return "?"


def _hook_sqlalchemy(module: Any) -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    def statement(conn: Any, cursor: Any, text: str, *args: Any) -> None:
        _bump("sql")
        _bump(f"sql:{(text.split() or ['?'])[0].upper()}:{_table_of(text)}")

    event.listen(Engine, "before_cursor_execute", statement)
    event.listen(Engine, "commit", lambda conn: _bump("commit"))


def _hook_libpq(module: Any) -> None:
    # The hot statements that skip SQLAlchemy (shared.driver, the intake's kept connections) run here, one or
    # several at a time.
    run_all_prepared = module.run_all_prepared

    def counted(pgconn: Any, prepared: Any, statements: Any, *args: Any, **kwargs: Any) -> Any:
        for sql, _ in statements:
            _bump("sql")
            _bump(f"sql:{(sql.split() or ['?'])[0].upper()}:{_table_of(sql)}")
        return run_all_prepared(pgconn, prepared, statements, *args, **kwargs)

    module.run_all_prepared = counted


def _hook_db(module: Any) -> None:
    # A unit of work's commit of driver statements alone goes to psycopg without SQLAlchemy's commit event.
    commit = module.OneConnection.commit

    def counted(self: Any) -> None:
        if self._connection is None and self._pooled is not None:
            _bump("commit")
        commit(self)

    module.OneConnection.commit = counted


def _hook_worker(module: Any) -> None:
    process = module._WorkerThread.process_message

    def process_message(self: Any, message: Any) -> Any:
        _bump(f"consumed:{message.actor_name}")
        return process(self, message)

    module._WorkerThread.process_message = process_message


def _hook_redis_broker(module: Any) -> None:
    enqueue = module.RedisBroker.enqueue

    def counted(self: Any, message: Any, *, delay: Any = None) -> Any:
        _bump(f"sent:{message.actor_name}")
        return enqueue(self, message, delay=delay)

    module.RedisBroker.enqueue = counted


def _hook_requests(module: Any) -> None:
    send = module.Session.send

    def counted(self: Any, request: Any, **kwargs: Any) -> Any:
        _bump(f"http:{request.method}")
        return send(self, request, **kwargs)

    module.Session.send = counted


def count_database_work() -> collections.Counter[str]:
    """The database hooks installed in this process now, on modules it loaded already, for a bench that counts
    in-process (bench/dispatch_profile.py): the counter they add to ("sql", "commit" among its keys)."""
    import sqlalchemy

    from shared import db, libpq

    _hook_sqlalchemy(sqlalchemy)
    _hook_libpq(libpq)
    _hook_db(db)
    return _counts


_HOOKS = {
    "sqlalchemy": _hook_sqlalchemy,
    "shared.libpq": _hook_libpq,
    "shared.db": _hook_db,
    "dramatiq.worker": _hook_worker,
    "dramatiq.brokers.redis": _hook_redis_broker,
    "requests.sessions": _hook_requests,
}


class _AfterLoading(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name not in _HOOKS:
            return None
        for finder in sys.meta_path:
            spec = (
                None if finder is self else getattr(finder, "find_spec", lambda *a: None)(name, path, target)
            )
            if spec is not None:
                break
        else:
            return None
        execute = spec.loader.exec_module

        def exec_module(module: Any) -> None:
            execute(module)
            _HOOKS[name](module)

        spec.loader.exec_module = exec_module
        return spec


_PROFILE = os.environ.get("LOOP_PROFILE")
_profilers: list[Any] = []


def _profile_this_thread(*args: Any) -> None:
    import cProfile

    sys.setprofile(None)
    profiler = cProfile.Profile(time.thread_time)
    _profilers.append(profiler)
    profiler.enable()


def _write_profiles() -> None:
    import marshal
    import pstats

    class _Snapshot:
        def __init__(self, profiler: Any) -> None:
            profiler.snapshot_stats()  # reads the entries under the GIL; the profiler keeps running
            self.stats = profiler.stats

        def create_stats(self) -> None:
            pass

    merged = None
    for profiler in list(_profilers):
        snapshot = _Snapshot(profiler)
        if not snapshot.stats:
            continue
        if merged is None:
            merged = pstats.Stats(snapshot)
        else:
            merged.add(snapshot)
    if merged is not None:
        path = os.path.join(_DIR or ".", f"{os.getpid()}.prof")
        with open(path + ".tmp", "wb") as handle:
            marshal.dump(merged.stats, handle)
        os.replace(path + ".tmp", path)


def _write_forever() -> None:
    sys.setprofile(None)  # the counting itself is not profiled
    ticks = 0
    while True:
        ticks += 1
        if _profiling() and ticks % 10 == 0:
            try:
                _write_profiles()
            except Exception as error:  # the counts go on
                print(f"loop_counts: profile not written: {error!r}", file=sys.stderr)
        times = os.times()
        with _lock:
            data: dict[str, Any] = dict(_counts)
        data.update(cpu=times.user + times.system, argv=" ".join(sys.argv)[:200])
        path = os.path.join(_DIR or ".", f"{os.getpid()}.json")
        with open(path + ".tmp", "w") as handle:
            json.dump(data, handle)
        os.replace(path + ".tmp", path)
        time.sleep(0.2)


def _profiling() -> bool:
    return bool(_PROFILE) and _PROFILE in " ".join(sys.argv)


def _start_writing() -> None:
    threading.Thread(target=_write_forever, daemon=True).start()


def _after_fork() -> None:
    # gunicorn and dramatiq fork their workers: each child counts on its own, from zero.
    global _lock
    _lock = threading.Lock()
    _counts.clear()
    _start_writing()


if _DIR:
    sys.meta_path.insert(0, _AfterLoading())
    if _profiling():
        threading.setprofile(_profile_this_thread)
        _profile_this_thread()
    _start_writing()
    os.register_at_fork(after_in_child=_after_fork)
