"""The Dramatiq worker reads ahead as many messages as settings say (~10x the throughput of
Dramatiq's default, DESIGN.md), however it is started."""

import dramatiq


def test_it_applies_the_prefetch_setting_to_every_queue_consumer(settings, redis_client):
    from command_side import actors

    settings.DRAMATIQ_QUEUE_PREFETCH = 37
    worker = dramatiq.Worker(actors.broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        prefetches = {name: consumer.prefetch for name, consumer in worker.consumers.items()}
    finally:
        worker.stop()
    assert {name: n for name, n in prefetches.items() if not name.endswith(".DQ")} == {
        actors.DRAIN_QUEUE: 37,
        actors.MAINTENANCE_QUEUE: 37,
    }
