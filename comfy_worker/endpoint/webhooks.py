"""Webhook delivery of the local endpoint, through the same address guard as the worker's input URLs.

A webhook is a URL anyone who may submit a job chooses, called from the endpoint's machine: without
a guard ``http://127.0.0.1:8188/interrupt`` stopped another user's running job (issue 14). So:
- at submission, a webhook must be an http(s) URL, and a literal IP address must be public (or on
  the operator's ``--webhook-allow`` list);
- at delivery, the host is resolved once through handler/inputs/connector.py's guarded resolver and
  the connection goes to the checked address (no DNS rebinding);
- redirects are never followed (a 3xx counts as a failed attempt);
- logs show the URL without user info and query string, which often carry credentials.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from handler.inputs.connector import AddressRefused, Lookup, guarded_connector, system_lookup
from handler.inputs.netguard import AddressPolicy, AllowList, display_url, parse_ip

__all__ = ["WEBHOOK_ATTEMPTS", "WebhookSender", "shown_webhook", "webhook_problem"]

logger = logging.getLogger(__name__)

WEBHOOK_ATTEMPTS = 3
MAX_WEBHOOK_CHARS = 2048


def webhook_problem(value: Any, allow: AllowList) -> str | None:
    """Why ``value`` cannot be a job's webhook, or None. Pure: names are resolved at delivery."""
    if not isinstance(value, str) or not value.strip():
        return "webhook must be a non-empty http(s) URL"
    if len(value) > MAX_WEBHOOK_CHARS or any(ord(ch) < 0x21 or ch == "\x7f" for ch in value):
        return (
            f"webhook is not a usable URL (spaces, control characters or over {MAX_WEBHOOK_CHARS} characters)"
        )
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        return "webhook is not a valid URL"
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return "webhook must be an http:// or https:// URL with a host"
    address = parse_ip(parts.hostname)
    if address is not None:
        reason = AddressPolicy(allow).refusal(address)
        if reason is not None:
            return (
                f"webhook {display_url(parts)} points to {reason}; the endpoint only calls public "
                "addresses, unless started with --webhook-allow (e.g. --webhook-allow 127.0.0.1)"
            )
    return None


def shown_webhook(url: str) -> str:
    """The webhook as logs show it: no user:password, no query string."""
    try:
        return display_url(urlsplit(url))
    except ValueError:
        return "(an unparsable URL)"


class WebhookSender:
    """Posts a job's final status to its webhook, a few times, only to addresses the guard allows."""

    def __init__(
        self,
        allow: AllowList,
        *,
        lookup: Lookup = system_lookup,
        attempts: int = WEBHOOK_ATTEMPTS,
        timeout_s: float = 10.0,
        backoff_s: float = 0.5,
    ) -> None:
        self._allow = allow
        self._lookup = lookup
        self._attempts = attempts
        self._timeout_s = timeout_s
        self._backoff_s = backoff_s
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=guarded_connector(AddressPolicy(self._allow), lookup=self._lookup),
            timeout=aiohttp.ClientTimeout(total=self._timeout_s),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def deliver(self, url: str, body: dict[str, Any]) -> bool:
        """True once the webhook answered 2xx; every failure is logged with the URL stripped."""
        shown = shown_webhook(url)
        problem = webhook_problem(url, self._allow)
        if problem is not None or self._session is None:
            logger.warning("webhook not sent: %s", problem or "the endpoint is stopping")
            return False
        for attempt in range(self._attempts):
            try:
                async with self._session.post(url, json=body, allow_redirects=False) as response:
                    if response.status < 300:
                        return True
                    if 300 <= response.status < 400:
                        logger.warning(
                            "webhook %s answered %s; redirects are not followed", shown, response.status
                        )
                        return False
                    logger.warning("webhook %s answered %s", shown, response.status)
            except AddressRefused as exc:
                logger.warning("webhook %s not sent: %s resolves to %s", shown, exc.host, exc.reason)
                return False
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                logger.warning("webhook %s failed: %s", shown, type(exc).__name__)
            await asyncio.sleep(self._backoff_s * 2**attempt)
        return False
