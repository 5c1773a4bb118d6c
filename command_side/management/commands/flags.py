"""`manage.py flags sync [--all]`: record and publish flag changes behind their events.

The scheduler runs `sync` every 5 s on its own (the upkeep `sync_flags`); by hand it is for an
operator who wants it now, and `--all` checks every flag, not only those changed since the last
run (after restoring a database, or a Redis that lost its data).
"""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from command_side import buffer
from command_side.flags.service import flags_sync


class Command(BaseCommand):
    help = "Record and publish feature flag changes not yet reflected in their rows or in Redis."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sync = sub.add_parser("sync", help="record and publish what is behind (--all: everything)")
        sync.add_argument("--all", action="store_true", help="check every flag, not only those changed lately")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["all"]:
            buffer.client().delete(f"{settings.REDIS_PREFIX}:flags:synced")
        synced = flags_sync()
        self.stdout.write(f"{synced} flag(s) were behind their events: recorded and published")
