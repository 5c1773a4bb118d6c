"""The flag aggregates' event store: schema tidelog_flags, created by the eventsourcing library's
own DDL (command_side/flags/application.py), on its own connection: so this migration is not
atomic, and the schema is committed before the library connects."""

from typing import Any

from django.db import migrations


def create(apps: Any, schema_editor: Any) -> None:
    from command_side.flags.application import SCHEMA, create_tables

    schema_editor.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    create_tables(schema_editor.connection.settings_dict)


def drop(apps: Any, schema_editor: Any) -> None:
    from command_side.flags.application import SCHEMA

    schema_editor.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("command_side", "0003_flags_and_experiments")]

    operations = [migrations.RunPython(create, drop)]
