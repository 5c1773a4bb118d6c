"""Dramatiq wiring: the broker and the actors that drain the buffer and keep the store tidy.

One Dramatiq message drains thousands of events; never send one message per analytics event.
"""

import logging
from typing import Any

import dramatiq
from django.conf import settings
from django.db import close_old_connections, connections
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import RedisBroker

from command_side import buffer, drain, event_store, storage
from command_side.flags.service import flags_sync

log = logging.getLogger(__name__)


class DjangoConnections(dramatiq.Middleware):
    """Worker threads keep Django connections across messages: drop broken or expired ones."""

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        close_old_connections()

    def before_worker_thread_shutdown(self, broker: dramatiq.Broker, thread: object) -> None:
        connections.close_all()

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any | None = None,
        exception: BaseException | None = None,
    ) -> None:
        close_old_connections()


class QueuePrefetch(dramatiq.Middleware):
    """Applies settings.DRAMATIQ_QUEUE_PREFETCH to the worker before its consumers start: ten
    times the throughput of Dramatiq's default (DESIGN.md), whoever starts the worker."""

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        worker.queue_prefetch = settings.DRAMATIQ_QUEUE_PREFETCH


# TRICKY: RedisBroker's __init__ has no annotations in dramatiq 2.2 (the rest of it has).
broker = RedisBroker(url=settings.REDIS_URL, namespace=f"{settings.REDIS_PREFIX}:dramatiq")  # type: ignore[no-untyped-call]
broker.add_middleware(DjangoConnections())
broker.add_middleware(QueuePrefetch())
dramatiq.set_broker(broker)

DRAIN_QUEUE = "tidelog-drain"
MAINTENANCE_QUEUE = "tidelog-maintenance"


def slot_key(slot: int) -> str:
    return f"{settings.REDIS_PREFIX}:drain-slot:{slot}"


@dramatiq.actor(queue_name=DRAIN_QUEUE, max_retries=3, min_backoff=500, time_limit=120_000)
def drain_buffer(slot: int) -> None:
    """Drain the buffer for a few seconds. The scheduler took `slot` for us; we keep it alive
    between batches and free it when we finish. A worker killed mid-drain stops refreshing it,
    so it expires within TIDELOG_DRAIN_SLOT_TTL_MS and the scheduler sends a drain elsewhere."""

    def hold_slot() -> None:
        buffer.client().pexpire(slot_key(slot), settings.TIDELOG_DRAIN_SLOT_TTL_MS)

    try:
        hold_slot()
        drain.drain(
            drain.consumer_name(slot), budget_seconds=settings.TIDELOG_DRAIN_BUDGET_SECONDS, between_batches=hold_slot
        )
    finally:
        buffer.client().delete(slot_key(slot))


@dramatiq.actor(queue_name=MAINTENANCE_QUEUE, max_retries=3)
def ensure_partitions() -> None:
    event_store.partitions_ensure_ahead()


@dramatiq.actor(queue_name=MAINTENANCE_QUEUE, max_retries=3, time_limit=3_600_000)
def prune_event_ids() -> None:
    removed = event_store.event_ids_prune()
    log.info(
        "dedup ledger: forgot %d ids older than %d days",
        removed,
        settings.TIDELOG_DEDUP_WINDOW_DAYS,
    )


@dramatiq.actor(queue_name=MAINTENANCE_QUEUE, max_retries=3, time_limit=3_600_000)
def apply_storage_policies() -> None:
    """The settings' compression policy (TimescaleDB's job does the compressing) and retention."""
    if event_store.engine() == "timescaledb":
        storage.compression_policy_apply(settings.TIDELOG_EVENT_COMPRESS_AFTER_DAYS)
    if settings.TIDELOG_EVENT_RETENTION_DAYS:
        storage.retention_run(settings.TIDELOG_EVENT_RETENTION_DAYS)


@dramatiq.actor(queue_name=MAINTENANCE_QUEUE, max_retries=1)
def prune_consumers() -> None:
    buffer.consumers_prune()


@dramatiq.actor(queue_name=MAINTENANCE_QUEUE, max_retries=0)
def sync_flags() -> None:
    """Record and publish flag changes a crashed process or a Redis outage left behind
    (command_side/flags/service.py, flags_sync). Sent every few seconds; usually a no-op."""
    synced = flags_sync()
    if synced:
        # A write caught between saving its event and recording it (its own record then finds it
        # done), a crash, a Redis outage, or a lost sync position (every flag is checked again).
        log.info("flags: %d flag change(s) not yet recorded or published: recorded, published", synced)
