"""``file:`` sources, for offline use: a local document read as if it had been fetched.

The file's modification time and size make its ETag, so an unchanged file is "not modified"
and costs no parse; the fetcher's size limit applies.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import unquote, urlsplit

from services.poller.fetch import Fetched, FetchError, Validators


def is_file_url(url: str) -> bool:
    return urlsplit(url).scheme == "file"


async def read_file(url: str, validators: Validators, *, max_bytes: int) -> Fetched:
    """The file at ``url`` (status 200), or 304 when its ETag is still ``validators.etag``."""
    return await asyncio.to_thread(_read, url, validators, max_bytes)


def _read(url: str, validators: Validators, max_bytes: int) -> Fetched:
    path = Path(unquote(urlsplit(url).path))
    try:
        stat = path.stat()
        tag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
        if validators.etag == tag:
            return Fetched(304, url, validators=validators)
        if stat.st_size > max_bytes:
            raise FetchError("too_large", f"file of {stat.st_size} bytes over the limit")
        with path.open("rb") as handle:
            body = handle.read(max_bytes + 1)
    except OSError as error:
        raise FetchError("network_error", f"{error.strerror or error}: {path}") from error
    if len(body) > max_bytes:
        raise FetchError("too_large", "file grew over the limit while read")
    content_type = "application/json" if path.suffix == ".json" else "application/xml"
    return Fetched(200, url, body, {"content-type": content_type}, Validators(tag, None))
