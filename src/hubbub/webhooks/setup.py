"""Building the dispatcher from the settings (called by app.py)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry

from hubbub.config import Settings
from hubbub.services.moderation import Moderator
from hubbub.services.undelivered import Undelivered
from hubbub.storage.outbox import OutboxStore
from hubbub.webhooks.delivery import Delivery
from hubbub.webhooks.dispatcher import Dispatcher, Policy
from hubbub.webhooks.metrics import WebhookCollector
from hubbub.webhooks.moderation import HttpModerator
from hubbub.webhooks.signing import parse_secret


def policy_of(settings: Settings) -> Policy:
    return Policy(timeout=settings.webhook_timeout, retry_base=settings.webhook_retry_base,
                  retry_max_delay=settings.webhook_retry_max_delay,
                  retry_for=settings.webhook_retry_for,
                  poll_interval=settings.webhook_poll_interval,
                  concurrency=settings.webhook_concurrency)


# A writer batch this large means sends are arriving faster than one commit apart.
BUSY_BATCH = 16


def moderator_of(settings: Settings) -> HttpModerator | None:
    """The moderation hook, or None when no moderation URL is set."""
    if settings.moderation_url is None or settings.webhook_secret is None:
        return None
    return HttpModerator(settings.moderation_url, parse_secret(settings.webhook_secret),
                         settings.moderation_timeout, settings.moderation_failure == "open")


def start_dispatcher(settings: Settings, outbox: OutboxStore, registry: CollectorRegistry,
                     batch_size: Callable[[], int]) -> tuple[Dispatcher, Delivery] | None:
    """The running dispatcher and its client, or None when no webhook URL is set.
    `batch_size`: the jobs of the writer's latest batch (the dispatcher yields to sends)."""
    if settings.webhook_url is None or settings.webhook_secret is None:
        return None
    delivery = Delivery(settings.webhook_url, parse_secret(settings.webhook_secret),
                        settings.webhook_timeout, settings.webhook_concurrency)
    dispatcher = Dispatcher(outbox, delivery.send, policy_of(settings),
                            busy=lambda: batch_size() >= BUSY_BATCH)
    registry.register(WebhookCollector(dispatcher.stats))
    dispatcher.start()
    return dispatcher, delivery


async def stop_outgoing(webhooks: tuple[Dispatcher, Delivery] | None,
                        undelivered: Undelivered | None,
                        moderator: Moderator | None) -> None:
    """Stop what talks to the backend: the offline checks, the moderation hook's client,
    the dispatcher and its client."""
    if undelivered is not None:
        await undelivered.close()
    if isinstance(moderator, HttpModerator):
        await moderator.close()
    if webhooks is not None:
        for part in webhooks:
            await part.close()
