"""Fetching a document over HTTP(S), within size and time limits.

One :class:`Fetcher` (and so one aiohttp ``ClientSession``) serves the whole process. Requests
are conditional (ETag / Last-Modified), compressed, size-capped while streaming, limited in
redirects and per-host concurrency; failures raise :class:`FetchError` with a metric outcome.

Memory stays bounded however many big documents arrive at once: a body that grows past
``large_body_bytes`` takes one of ``parse_workers`` large-body slots before it grows further,
and :meth:`Fetcher.document` keeps that slot until the caller is done with the body (parsed
and published), so big documents queue instead of piling up in memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp

from services.poller.settings import PollerSettings
from shared.retry_after import retry_after_seconds

_CHUNK = 64 * 1024
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)


class FetchError(Exception):
    """A failed fetch; ``outcome`` is the ``vigil_polls_total`` label."""

    def __init__(
        self,
        outcome: str,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class Validators:
    """What the last successful response said, for a conditional request."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class Fetched:
    """A document (``status`` 200) or the news that it has not changed (304)."""

    status: int
    url: str
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    validators: Validators = Validators()

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


class Fetcher:
    """Conditional GETs over one shared session."""

    def __init__(self, settings: PollerSettings) -> None:
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._large = asyncio.Semaphore(settings.parse_workers)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            s = self.settings
            connector = aiohttp.TCPConnector(
                limit=s.global_concurrency, limit_per_host=s.per_host_concurrency, ttl_dns_cache=300
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(
                    total=s.total_timeout_seconds,
                    connect=s.connect_timeout_seconds,
                    sock_read=s.read_timeout_seconds,
                ),
                headers={"User-Agent": s.user_agent, "Accept": ACCEPT},
                auto_decompress=True,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch(
        self,
        url: str,
        *,
        validators: Validators = Validators(),
        headers: Mapping[str, str] | None = None,
    ) -> Fetched:
        """Fetch ``url``; 304 when the validators still match; raise :class:`FetchError`."""
        async with self.document(url, validators=validators, headers=headers) as fetched:
            return fetched

    @asynccontextmanager
    async def document(
        self,
        url: str,
        *,
        validators: Validators = Validators(),
        headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[Fetched]:
        """Like :meth:`fetch`, keeping a large body's memory slot until the block ends.

        The per-host slot is released as soon as the body is read: parsing never holds it.
        """
        async with AsyncExitStack() as held:
            host = urlsplit(url).hostname or ""
            gate = self._hosts.setdefault(
                host, asyncio.Semaphore(self.settings.per_host_concurrency)
            )
            async with gate:
                fetched = await self._get(url, validators, headers or {}, held)
            yield fetched

    async def _get(
        self, url: str, validators: Validators, extra: Mapping[str, str], held: AsyncExitStack
    ) -> Fetched:
        request_headers = dict(extra)
        if validators.etag:
            request_headers["If-None-Match"] = validators.etag
        if validators.last_modified:
            request_headers["If-Modified-Since"] = validators.last_modified
        try:
            async with self._client().get(
                url, headers=request_headers, max_redirects=self.settings.max_redirects
            ) as response:
                headers = {k.lower(): v for k, v in response.headers.items()}
                final = str(response.url)
                if response.status == 304:
                    return Fetched(304, final, headers=headers, validators=validators)
                self._check_status(response.status, headers)
                body = await self._read_capped(response, held)
        except aiohttp.TooManyRedirects as error:
            raise FetchError("http_error", "too many redirects") from error
        except TimeoutError as error:
            raise FetchError("timeout", "timed out") from error
        except aiohttp.ClientResponseError as error:
            raise FetchError("http_error", f"bad response: {error.message}") from error
        except (aiohttp.ClientError, OSError) as error:
            raise FetchError("network_error", str(error) or type(error).__name__) from error
        kept = Validators(headers.get("etag"), headers.get("last-modified"))
        return Fetched(response.status, final, body, headers, kept)

    async def post_form(self, url: str, form: Mapping[str, str]) -> int:
        """POST a form (a WebSub subscription request); return the response status."""
        try:
            async with self._client().post(
                url, data=dict(form), max_redirects=self.settings.max_redirects
            ) as response:
                return response.status
        except TimeoutError as error:
            raise FetchError("timeout", "timed out") from error
        except (aiohttp.ClientError, OSError) as error:
            raise FetchError("network_error", str(error) or type(error).__name__) from error

    def _check_status(self, status: int, headers: Mapping[str, str]) -> None:
        if 200 <= status < 300:
            return
        retry_after = retry_after_seconds(headers.get("retry-after"))
        if status == 429 or (status == 503 and retry_after is not None):
            raise FetchError(
                "rate_limited", f"HTTP {status}", status=status, retry_after=retry_after
            )
        raise FetchError("http_error", f"HTTP {status}", status=status)

    async def _read_capped(self, response: aiohttp.ClientResponse, held: AsyncExitStack) -> bytes:
        limit = self.settings.max_body_bytes
        if (response.content_length or 0) > limit:
            raise FetchError("too_large", f"body of {response.content_length} bytes over {limit}")
        chunks: list[bytes] = []
        size = 0
        large = False
        async for chunk in response.content.iter_chunked(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise FetchError("too_large", f"body over {limit} bytes")
            if not large and size > self.settings.large_body_bytes:
                await held.enter_async_context(self._large)
                large = True
            chunks.append(chunk)
            # A buffered body is read without suspending: let other tasks (and /healthz)
            # run between chunks of a big one.
            await asyncio.sleep(0)
        return b"".join(chunks)
