"""`manage.py schedule_drains`: the ticker that sends drain messages while the buffer has entries,
and the periodic upkeep (partitions ahead, dedup-ledger pruning, storage policies, flags left
unpublished). Sends messages, does no work.

Run exactly one (a second is harmless: the drain slots are taken with SET NX, so duplicates
are skipped, not doubled).
"""

import logging
import signal
import time
from typing import Any

import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

log = logging.getLogger("tidelog.scheduler")

UPKEEP = {
    "ensure_partitions": 600.0,
    "prune_event_ids": 3600.0,
    "apply_storage_policies": 3600.0,
    "prune_consumers": 3600.0,
    "sync_flags": 5.0,
}


class Command(BaseCommand):
    help = "Send Dramatiq drain messages while the Redis buffer holds entries; schedule upkeep."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tick", type=float, default=0.1, help="seconds between checks")

    def handle(self, *args: Any, **options: Any) -> None:
        from command_side import actors, buffer

        stopping = False

        def stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        tick = options["tick"]
        last_upkeep = dict.fromkeys(UPKEEP, 0.0)
        log.info("scheduling drains every %.2fs with %d slots", tick, settings.TIDELOG_DRAIN_PARALLELISM)
        while not stopping:
            try:
                backlog = buffer.backlog()
                if backlog > 0:
                    client = buffer.client()
                    # One drain for a trickle, more as the backlog grows: parallel drains of a
                    # few entries each would spend more on transactions than on events.
                    slots = min(settings.TIDELOG_DRAIN_PARALLELISM, 1 + backlog // settings.TIDELOG_DRAIN_SLOT_BACKLOG)
                    for slot in range(slots):
                        # A slot is held until its actor finishes, which refreshes it between
                        # batches; a killed worker's slot expires after TIDELOG_DRAIN_SLOT_TTL_MS.
                        if client.set(actors.slot_key(slot), "1", nx=True, px=settings.TIDELOG_DRAIN_SLOT_TTL_MS):
                            actors.drain_buffer.send(slot)
                now = time.monotonic()
                for name, every in UPKEEP.items():
                    if now - last_upkeep[name] >= every:
                        getattr(actors, name).send()
                        last_upkeep[name] = now
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning("Redis unavailable (%s); retrying in 1s", exc)
                time.sleep(1)
            except redis.ResponseError as exc:
                # Redis refusing writes (READONLY after a failover, MISCONF, …) is an outage to
                # wait out, as the API's 503s do; any other error reply is a bug and ends us.
                if buffer.write_refusal(exc) is None:
                    raise
                log.warning("Redis refuses writes (%s: %s); retrying in 1s", buffer.error_prefix(exc), exc)
                time.sleep(1)
            time.sleep(tick)
        log.info("scheduler stopped")
