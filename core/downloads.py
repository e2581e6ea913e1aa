"""Bounded, SSRF-safe downloads of provider artifact URLs, plus magic-byte sniffing."""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import httpx

from core.providers.errors import PermanentProviderError, ProviderError, RetryableProviderError

log = logging.getLogger(__name__)

PROVIDER = "download"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_OCTET = frozenset({"", "application/octet-stream", "binary/octet-stream"})
_SNIFFED_FAMILIES = {"image/": "a valid image", "audio/": "valid audio"}

Resolver = Callable[[str, int], Iterable[str]]


@dataclass(frozen=True)
class DownloadPolicy:
    max_bytes: int = 50 * 1024 * 1024
    timeout: float = 60.0  # whole fetch, redirects included
    max_redirects: int = 3
    # "host" or "host:port" entries that may be private/loopback (the local simulator, test servers).
    allowed_hosts: frozenset[str] = field(default_factory=frozenset)
    # CDNs often label media application/octet-stream: accept it when the bytes sniff as an allowed kind.
    accept_octet_stream: bool = True
    # Also refuse when the connected peer address is not public (DNS rebinding). Turn off behind a proxy.
    verify_peer: bool = True


@dataclass(frozen=True)
class Downloaded:
    data: bytes
    content_type: str
    url: str


def sniff_type(data: bytes) -> str | None:
    """The media type the leading bytes prove, or None."""
    head = data[:16]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith(b"ID3") or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio/mpeg"  # an ID3 tag or an MPEG audio frame sync
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head[4:11] == b"ftypM4A":
        return "audio/mp4"
    return None


def looks_like_audio(data: bytes) -> bool:
    return (sniff_type(data) or "").startswith("audio/")


def looks_like_image(data: bytes) -> bool:
    return (sniff_type(data) or "").startswith("image/")


def is_public_address(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None and not is_public_address(str(embedded)):
            return False
    bad = ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast
    bad = bad or ip.is_reserved or ip.is_unspecified
    return ip.is_global and not bad


def system_resolver(host: str, port: int) -> list[str]:
    return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def make_download_client(
    *, timeout: httpx.Timeout, transport: httpx.BaseTransport | None = None
) -> httpx.Client:
    """A client for artifact URLs: no base URL, no auth header, no automatic redirects."""
    return httpx.Client(
        timeout=timeout, transport=transport, follow_redirects=False, headers={"User-Agent": "songsmith"}
    )


def _perm(message: str, status: int | None = None) -> PermanentProviderError:
    return PermanentProviderError(PROVIDER, message, status=status)


def _retry(message: str, status: int | None = None) -> RetryableProviderError:
    return RetryableProviderError(PROVIDER, message, status=status)


class Downloader:
    def __init__(
        self, client: httpx.Client, policy: DownloadPolicy, *, resolver: Resolver = system_resolver
    ) -> None:
        self._client = client
        self._policy = policy
        self._resolver = resolver
        self._allowed = frozenset(h.strip().lower() for h in policy.allowed_hosts if h.strip())

    def fetch(
        self, url: str, *, kind: str, allowed_types: tuple[str, ...], request_id: str | None = None
    ) -> Downloaded:
        """GET `url` within the policy; messages never echo the URL (signed URLs carry tokens)."""
        deadline = time.monotonic() + self._policy.timeout
        try:
            current = httpx.URL(url)
        except (httpx.InvalidURL, TypeError):
            raise _perm(f"The {kind} URL is not a valid URL") from None
        for _hop in range(self._policy.max_redirects + 1):
            allowed = self._check_url(current, kind)
            log.debug("download %s hop host=%s request_id=%s", kind, current.host, request_id)
            try:
                result = self._get(current, kind, allowed_types, allowed, deadline)
            except httpx.HTTPError as exc:
                raise self._transport_error(exc, kind) from exc
            if isinstance(result, Downloaded):
                return result
            current = result
        raise _perm(f"The {kind} URL redirected more than {self._policy.max_redirects} times")

    def _get(
        self, url: httpx.URL, kind: str, allowed_types: tuple[str, ...], allowed: bool, deadline: float
    ) -> Downloaded | httpx.URL:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _retry(f"The {kind} download did not finish within {self._policy.timeout:g}s")
        request = self._client.build_request("GET", url, timeout=httpx.Timeout(remaining))
        request.headers.pop("authorization", None)  # provider keys never go to artifact hosts
        response = self._client.send(request, stream=True, follow_redirects=False)
        try:
            if response.status_code in _REDIRECTS:
                location = response.headers.get("location")
                if not location:
                    raise _perm(f"The {kind} URL redirected without a Location", response.status_code)
                return url.join(location)
            if not allowed:
                self._check_peer(response, kind)
            self._check_status(response.status_code, kind)
            content_type = self._check_type(response, kind, allowed_types)
            data = self._read(response, kind, deadline)
        finally:
            response.close()
        content_type = self._verify_bytes(data, content_type, kind, allowed_types)
        return Downloaded(data=data, content_type=content_type, url=str(url))

    def _check_url(self, url: httpx.URL, kind: str) -> bool:
        """Refuse non-http(s) and non-public hosts; returns True when the host is explicitly allowed."""
        if url.scheme not in ("http", "https"):
            raise _perm(f"The {kind} URL must use http or https")
        host = url.host.lower()
        if not host:
            raise _perm(f"The {kind} URL has no host")
        port = url.port or (443 if url.scheme == "https" else 80)
        if {host, f"{host}:{port}", f"[{host}]:{port}"} & self._allowed:
            return True
        try:
            addresses = list(self._resolver(host, port))
        except (OSError, UnicodeError):
            raise _retry(f"The {kind} URL's host could not be resolved") from None
        if not addresses:
            raise _retry(f"The {kind} URL's host could not be resolved")
        if not all(is_public_address(a) for a in addresses):
            raise _perm(f"The {kind} URL points to a private or local address (refused)")
        return False

    def _check_peer(self, response: httpx.Response, kind: str) -> None:
        stream = response.extensions.get("network_stream")
        if not self._policy.verify_peer or stream is None or not hasattr(stream, "get_extra_info"):
            return
        peer = stream.get_extra_info("server_addr")
        if isinstance(peer, tuple) and peer and not is_public_address(str(peer[0])):
            raise _perm(f"The {kind} URL connected to a private or local address (refused)")

    @staticmethod
    def _check_status(status: int, kind: str) -> None:
        if status == 200:
            return
        if status in (404, 410):
            raise _perm(f"The {kind} URL returned HTTP {status} (expired or missing)", status)
        if status in (401, 403):
            raise _perm(f"The {kind} URL returned HTTP {status} (expired or not allowed)", status)
        if status in (408, 429) or status >= 500:
            raise _retry(f"The {kind} URL returned HTTP {status}", status)
        raise _perm(f"The {kind} URL returned HTTP {status}", status)

    def _check_type(self, response: httpx.Response, kind: str, allowed_types: tuple[str, ...]) -> str:
        content_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if any(content_type.startswith(prefix.lower()) for prefix in allowed_types):
            return content_type
        if self._policy.accept_octet_stream and content_type in _OCTET:
            return content_type  # decided by the bytes in _verify_bytes
        shown = content_type[:60] or "no content type"
        raise _perm(f"The {kind} URL returned {shown}, expected {' or '.join(allowed_types)}")

    def _read(self, response: httpx.Response, kind: str, deadline: float) -> bytes:
        limit = self._policy.max_bytes
        declared = response.headers.get("content-length", "")
        if declared.strip().isdigit() and int(declared) > limit:
            raise _perm(f"The {kind} file is too large ({int(declared)} bytes; the limit is {limit})")
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > limit:
                raise _perm(f"The {kind} file is larger than the {limit}-byte limit")
            chunks.append(chunk)
            if time.monotonic() > deadline:
                raise _retry(f"The {kind} download did not finish within {self._policy.timeout:g}s")
        return b"".join(chunks)

    @staticmethod
    def _verify_bytes(data: bytes, content_type: str, kind: str, allowed_types: tuple[str, ...]) -> str:
        """The label must match the bytes; an unlabelled (octet-stream) file takes the sniffed type."""
        sniffed = sniff_type(data) or ""
        prefixes = tuple(p.lower() for p in allowed_types)
        labelled = bool(content_type) and content_type.startswith(prefixes)
        expected = content_type if labelled else next((p for p in prefixes if p in _SNIFFED_FAMILIES), "")
        for family, noun in _SNIFFED_FAMILIES.items():
            if expected.startswith(family) and not sniffed.startswith(family):
                raise _perm(f"The {kind} URL did not return {noun}")
        if labelled:
            return content_type
        if sniffed and sniffed.startswith(prefixes):
            return sniffed
        raise _perm(f"The {kind} URL did not return a recognisable file")

    @staticmethod
    def _transport_error(exc: httpx.HTTPError, kind: str) -> ProviderError:
        name = type(exc).__name__  # never str(exc): it carries the URL
        if isinstance(exc, httpx.UnsupportedProtocol):
            return _perm(f"The {kind} URL must use http or https")
        if isinstance(exc, httpx.TimeoutException):
            return _retry(f"The {kind} download timed out ({name})")
        return _retry(f"The {kind} download failed ({name})")
