"""Sends the queue's head, one request at a time, and does what the answer says (the README's
table): delete what was stored or refused for good, keep the rest and wait before trying again."""

import itertools
import logging
import random
import threading
import time
import urllib.parse
from collections.abc import Callable

from .config import TidelogConfig
from .event_queue import EVENT, SESSION_END, SESSION_START, EventQueue, Item
from .transport import Answer, Transport
from .wire import gzipped, timestamp, to_json

log = logging.getLogger("tidelog")


class Sender:
    def __init__(
        self,
        config: TidelogConfig,
        queue: EventQueue,
        transport: Transport,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.config, self.queue, self.transport, self.clock = config, queue, transport, clock
        self.rng = rng or random.Random()
        self.lock = threading.Lock()  # one request in flight at a time
        self.failures = 0  # in a row, for the backoff
        self.retry_at = 0.0  # the clock's time before which nothing is sent
        self.last_failed = False
        self.batch_limit = config.flush_at  # halved by a 413, doubled back up to flush_at by each success
        self.rejected_events = 0  # events a 200 named as rejected (the server kept them as bad events)
        self.refused_requests = 0  # requests deleted unsent by a 400 or a 413

    def backing_off(self, now: float | None = None) -> bool:
        return (self.clock() if now is None else now) < self.retry_at

    def flush(self) -> None:
        """Sends until the queue is empty or a failure makes it wait."""
        while self.send_once() and not self.last_failed:
            pass

    def send_once(self, now: float | None = None) -> bool:
        """Sends the next request unless backing off; says whether anything was sent."""
        with self.lock:
            now = self.clock() if now is None else now
            if now < self.retry_at:
                return False
            items = self.next_request()
            if not items:
                return False
            method, path, body, headers = self.request(items, timestamp(now))
            try:
                answer = self.transport.send(method, self.config.url(path), body, headers)
            except OSError as error:
                self.back_off(f"no answer ({error})")
                return True
            self.handle(items, answer)
            return True

    def next_request(self) -> list[Item]:
        """A session request alone, or up to batch_limit consecutive events."""
        head = self.queue.peek(self.batch_limit)
        if head and head[0].kind != EVENT:
            return head[:1]
        return list(itertools.takewhile(lambda item: item.kind == EVENT, head))

    def request(self, items: list[Item], sent_at: str) -> tuple[str, str, bytes, dict[str, str]]:
        headers = {"Authorization": f"Bearer {self.config.api_key}", "Content-Type": "application/json"}
        kind = items[0].kind
        if kind == SESSION_START:
            return "POST", "session/start/", to_json({**items[0].body, "sent_at": sent_at}), headers
        if kind.startswith(SESSION_END + " "):
            session_id = urllib.parse.quote(kind.removeprefix(SESSION_END + " "), safe="")
            return "PUT", f"session/{session_id}/end/", to_json({**items[0].body, "sent_at": sent_at}), headers
        body = gzipped(to_json({"sent_at": sent_at, "events": [item.body for item in items]}))
        return "POST", "batch/", body, {**headers, "Content-Encoding": "gzip"}

    def handle(self, items: list[Item], answer: Answer) -> None:
        status, what = answer.status, f"{items[0].kind} x{len(items)}"
        self.last_failed = False
        if status in (200, 201):
            self.queue.remove(items)
            self.failures, self.batch_limit = 0, min(self.config.flush_at, self.batch_limit * 2)
            if items[0].kind == EVENT:
                self.log_rejected(answer)
        elif status == 400:
            self.queue.remove(items)  # refused whole and kept in the server's bad-events list
            self.refused_requests += len(items)
            log.warning("tidelog: %s refused for good: %s", what, answer.body[:300])
        elif status == 413 and len(items) > 1:
            self.batch_limit = max(1, len(items) // 2)  # the next request is the first half
        elif status == 413:
            self.queue.remove(items)
            self.refused_requests += 1
            log.warning("tidelog: %s too large to ever be stored: deleted", what)
        elif status in (429, 503) and (retry_after := answer.retry_after()) is not None:
            self.last_failed = True
            self.retry_at = self.clock() + retry_after * self.rng.uniform(1, 1.2)
            log.info("tidelog: %s answered %d, retrying after %.1f s", what, status, retry_after)
        else:
            self.back_off(f"{what} answered {status}")

    def back_off(self, why: str) -> None:
        """min(max, base x 2^(failures-1)) x uniform(0.5, 1): kept, tried again later."""
        self.last_failed = True
        self.failures += 1
        doubled = self.config.base_backoff_seconds * 2.0 ** min(self.failures - 1, 60)
        wait = min(self.config.max_backoff_seconds, doubled) * self.rng.uniform(0.5, 1)
        self.retry_at = self.clock() + wait
        log.info("tidelog: %s; retrying in %.1f s (failure %d)", why, wait, self.failures)

    def log_rejected(self, answer: Answer) -> None:
        try:
            rejected = answer.json().get("rejected") or []
        except (ValueError, AttributeError):
            return
        self.rejected_events += len(rejected)
        for entry in rejected:
            log.warning("tidelog: event rejected (the server keeps it as a bad event): %s", entry)
