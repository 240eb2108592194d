"""Counting hooks for bench/loop_counts.py, loaded by every Python process that has this folder on PYTHONPATH.

With LOOP_COUNTS_DIR set, a process counts its SQL statements (by verb and table), commits, dramatiq messages
sent and processed (by actor) and HTTP requests made, and writes them with its CPU time to
$LOOP_COUNTS_DIR/<pid>.json every 0.2 s. Hooks are installed as their modules finish loading.
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


_HOOKS = {
    "sqlalchemy": _hook_sqlalchemy,
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


def _write_forever() -> None:
    while True:
        times = os.times()
        with _lock:
            data: dict[str, Any] = dict(_counts)
        data.update(cpu=times.user + times.system, argv=" ".join(sys.argv)[:200])
        path = os.path.join(_DIR or ".", f"{os.getpid()}.json")
        with open(path + ".tmp", "w") as handle:
            json.dump(data, handle)
        os.replace(path + ".tmp", path)
        time.sleep(0.2)


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
    _start_writing()
    os.register_at_fork(after_in_child=_after_fork)
