"""The eventsourcing Application that stores flag aggregates, in the schema `tidelog_flags` of
Tidelog's own database (table `flags_events`; migration command_side/0004 creates both).

It keeps its own small psycopg pool, built from Django's database settings on first use, so it
follows whatever database Django is on (a test run's own included). Settings come from
core/settings.py only: the library's habit of reading os.environ is switched off here.
"""

import threading
import uuid
from typing import Any

from django.conf import settings
from django.db import connection
from eventsourcing.application import Application
from eventsourcing.utils import Environment, EnvType

from command_side.flags.aggregate import Flag

SCHEMA = "tidelog_flags"


def _env(settings_dict: dict[str, Any], *, create_table: bool) -> dict[str, str]:
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(settings_dict["NAME"]),
        "POSTGRES_HOST": str(settings_dict.get("HOST") or "localhost"),
        "POSTGRES_PORT": str(settings_dict.get("PORT") or 5432),
        "POSTGRES_USER": str(settings_dict.get("USER") or "postgres"),
        "POSTGRES_PASSWORD": str(settings_dict.get("PASSWORD") or ""),
        "POSTGRES_SCHEMA": SCHEMA,
        "POSTGRES_CONNECT_TIMEOUT": str(max(1, int(settings.TIDELOG_DATABASE_CONNECT_TIMEOUT_SECONDS))),
        "POSTGRES_POOL_SIZE": "2",
        "POSTGRES_MAX_OVERFLOW": "2",
        # Writes take the events table's lock (the library serialises notification ids):
        # waiting longer than this for it is an outage, answered 503 rather than hanging.
        "POSTGRES_LOCK_TIMEOUT": "5",
        "CREATE_TABLE": "y" if create_table else "n",
    }


class FlagApplication(Application[uuid.UUID]):
    name = "flags"

    def construct_env(self, name: str, env: EnvType | None = None) -> Environment:
        # Not os.environ: every setting of Tidelog is in core/settings.py.
        return Environment(name, dict(env or {}))

    def flag(self, aggregate_id: uuid.UUID) -> Flag:
        aggregate: object = self.repository.get(aggregate_id)
        assert isinstance(aggregate, Flag)
        return aggregate


_apps: dict[str, FlagApplication] = {}
_apps_lock = threading.Lock()


def flag_app() -> FlagApplication:
    """The process's FlagApplication for the database Django is connected to."""
    name = str(connection.settings_dict["NAME"])
    app = _apps.get(name)
    if app is None:
        with _apps_lock:
            app = _apps.get(name)
            if app is None:
                app = _apps[name] = FlagApplication(env=_env(connection.settings_dict, create_table=False))
    return app


def create_tables(settings_dict: dict[str, Any]) -> None:
    """The library's own DDL for its table, in SCHEMA (which must exist)."""
    app = FlagApplication(env=_env(settings_dict, create_table=True))
    app.close()


def close_all() -> None:
    """Close every FlagApplication's pool (tests, before their database is dropped)."""
    with _apps_lock:
        for app in _apps.values():
            app.close()
        _apps.clear()
