"""Bare Flask endpoints that intake_bench.py measures Closeloop's intake against, under the same gunicorn.

    gunicorn --pythonpath bench 'baseline_apps:create_app()'

``POST /json`` parses the JSON and answers 202: the framework's limit. ``POST /durable`` also stores the
event with one ``INSERT ... ON CONFLICT DO NOTHING`` and a commit on PostgreSQL: the limit of an intake
that keeps what it accepts. Both answer 200 for an id seen before, like Closeloop.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

import psycopg
from flask import Flask, request

_local = threading.local()


def _connection() -> psycopg.Connection[Any]:
    # One connection per worker process (gunicorn forks after import, so open it on first use).
    connection = getattr(_local, "connection", None)
    if connection is None:
        connection = psycopg.connect(os.environ["BASELINE_DATABASE_DSN"], autocommit=False)
        _local.connection = connection
    return connection


def create_app() -> Flask:
    app = Flask("baseline")

    @app.post("/json")
    def bare_json():
        payload = request.get_json()
        return {"id": payload["id"], "status": "accepted"}, 202

    @app.post("/durable")
    def durable():
        payload = request.get_json()
        connection = _connection()
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO baseline_events (id, body) VALUES (%s, %s) ON CONFLICT (id) DO NOTHING",
                (payload["id"], json.dumps(payload)),
            )
            inserted = cursor.rowcount == 1
        connection.commit()
        return {
            "id": payload["id"],
            "status": "accepted" if inserted else "duplicate",
        }, 202 if inserted else 200

    return app


def create_table(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(
            "CREATE TABLE IF NOT EXISTS baseline_events (id text PRIMARY KEY, body jsonb NOT NULL)"
        )
