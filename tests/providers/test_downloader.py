"""Artifact downloader: scheme and address refusal, redirects, size and type caps, sniffing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from core.downloads import (
    Downloader,
    DownloadPolicy,
    is_public_address,
    looks_like_audio,
    looks_like_image,
    make_download_client,
)
from core.providers.errors import PermanentProviderError, RetryableProviderError

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
MP3 = b"ID3\x04\x00" + b"\x00" * 64
PUBLIC = "93.184.216.34"


def public_resolver(host: str, port: int) -> list[str]:
    return [PUBLIC]


def mock_downloader(handler, resolver=public_resolver, **policy) -> Downloader:
    client = make_download_client(timeout=httpx.Timeout(5.0), transport=httpx.MockTransport(handler))
    return Downloader(client, DownloadPolicy(**policy), resolver=resolver)


def serve(body: bytes, content_type: str, status: int = 200, **headers: str):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers={"Content-Type": content_type, **headers})

    return handler


def test_sniffers_recognise_media_magic_bytes():
    assert looks_like_image(PNG) and looks_like_image(b"\xff\xd8\xff\xe0") and looks_like_image(b"GIF89a..")
    assert looks_like_image(b"RIFF\x00\x00\x00\x00WEBPVP8 ")
    assert looks_like_audio(MP3) and looks_like_audio(b"\xff\xfb\x90\x00") and looks_like_audio(b"OggS\x00")
    assert looks_like_audio(b"fLaC\x00") and looks_like_audio(b"RIFF\x00\x00\x00\x00WAVEfmt ")
    assert not looks_like_audio(PNG) and not looks_like_image(MP3) and not looks_like_image(b"<html>")


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "100.64.0.1",
        "fe80::1",
        "fc00::1",
        "240.0.0.1",
        "junk",
    ],
)
def test_non_public_addresses_are_detected(address):
    assert not is_public_address(address)


def test_public_address_is_accepted():
    assert is_public_address(PUBLIC) and is_public_address("2606:4700:4700::1111")


def test_fetch_returns_bytes_type_and_final_url():
    got = mock_downloader(serve(PNG, "image/png; charset=binary")).fetch(
        "https://cdn.test/c.png", kind="cover image", allowed_types=("image/",)
    )
    assert got.data == PNG and got.content_type == "image/png" and got.url == "https://cdn.test/c.png"


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://cdn.test/a.mp3", "data:audio/mpeg;base64,SUQz", "gopher://x"]
)
def test_non_http_schemes_are_refused(url):
    with pytest.raises(PermanentProviderError, match="http or https"):
        mock_downloader(serve(MP3, "audio/mpeg")).fetch(url, kind="audio", allowed_types=("audio/",))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/a.mp3",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.5/a.mp3",
        "http://[::1]/a",
        "http://[::ffff:127.0.0.1]/a",
    ],
)
def test_private_literal_hosts_are_refused_without_a_request(url):
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=MP3, headers={"Content-Type": "audio/mpeg"})

    downloader = mock_downloader(handler, resolver=lambda host, _port: [host])
    with pytest.raises(PermanentProviderError, match="private or local"):
        downloader.fetch(url, kind="audio", allowed_types=("audio/",))
    assert seen == []


def test_a_hostname_resolving_to_any_private_address_is_refused():
    downloader = mock_downloader(serve(MP3, "audio/mpeg"), resolver=lambda _host, _port: [PUBLIC, "10.0.0.7"])
    with pytest.raises(PermanentProviderError, match="private or local"):
        downloader.fetch("https://cdn.test/a.mp3", kind="audio", allowed_types=("audio/",))


def test_allowed_hosts_may_be_private():
    downloader = mock_downloader(
        serve(MP3, "audio/mpeg"),
        resolver=lambda host, _port: [host],
        allowed_hosts=frozenset({"127.0.0.1:8765"}),
    )
    got = downloader.fetch("http://127.0.0.1:8765/a.mp3", kind="audio", allowed_types=("audio/",))
    assert got.data == MP3
    with pytest.raises(PermanentProviderError):  # another port on the same host is not allowed
        downloader.fetch("http://127.0.0.1:9999/a.mp3", kind="audio", allowed_types=("audio/",))


def redirecting(target: str, hops: int = 1):
    count = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        count["n"] += 1
        if count["n"] <= hops:
            return httpx.Response(302, headers={"Location": target})
        return httpx.Response(200, content=MP3, headers={"Content-Type": "audio/mpeg"})

    return handler


def test_redirects_are_followed_up_to_the_limit():
    got = mock_downloader(redirecting("/next.mp3", hops=3)).fetch(
        "https://cdn.test/a.mp3", kind="audio", allowed_types=("audio/",)
    )
    assert got.url == "https://cdn.test/next.mp3"
    with pytest.raises(PermanentProviderError, match="redirected more than 3 times"):
        mock_downloader(redirecting("/next.mp3", hops=4)).fetch(
            "https://cdn.test/a.mp3", kind="audio", allowed_types=("audio/",)
        )


@pytest.mark.parametrize("target", ["http://169.254.169.254/latest/meta-data", "file:///etc/passwd"])
def test_a_redirect_to_a_private_host_or_other_scheme_is_refused(target):
    def resolver(host: str, port: int) -> list[str]:
        return [PUBLIC] if host == "cdn.test" else [host]

    with pytest.raises(PermanentProviderError):
        mock_downloader(redirecting(target), resolver=resolver).fetch(
            "https://cdn.test/a.mp3", kind="audio", allowed_types=("audio/",)
        )


def test_content_length_above_the_cap_is_refused_early():
    handler = serve(MP3, "audio/mpeg", **{"Content-Length": "999999"})
    with pytest.raises(PermanentProviderError, match="too large"):
        mock_downloader(handler, max_bytes=1000).fetch(
            "https://cdn.test/a", kind="audio", allowed_types=("audio/",)
        )


def test_streamed_body_above_the_cap_is_aborted():
    class Endless(httpx.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            yield MP3
            while True:
                yield b"\x00" * 4096

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=Endless(), headers={"Content-Type": "audio/mpeg"})

    with pytest.raises(PermanentProviderError, match="larger than"):
        mock_downloader(handler, max_bytes=100_000).fetch(
            "https://cdn.test/a", kind="audio", allowed_types=("audio/",)
        )


def test_wrong_content_type_is_refused():
    with pytest.raises(PermanentProviderError, match="text/html"):
        mock_downloader(serve(b"<html>", "text/html")).fetch(
            "https://cdn.test/a", kind="audio", allowed_types=("audio/",)
        )


def test_image_label_with_non_image_bytes_is_refused():
    with pytest.raises(PermanentProviderError, match="did not return a valid image"):
        mock_downloader(serve(b"<html>", "image/png")).fetch(
            "https://cdn.test/c", kind="cover image", allowed_types=("image/",)
        )


def test_octet_stream_is_accepted_when_the_bytes_match():
    got = mock_downloader(serve(MP3, "application/octet-stream")).fetch(
        "https://cdn.test/a", kind="audio", allowed_types=("audio/",)
    )
    assert got.content_type == "audio/mpeg"
    with pytest.raises(PermanentProviderError, match="valid audio"):
        mock_downloader(serve(PNG, "application/octet-stream")).fetch(
            "https://cdn.test/a", kind="audio", allowed_types=("audio/",)
        )


@pytest.mark.parametrize("status", [404, 410])
def test_missing_url_message_names_the_kind(status):
    with pytest.raises(PermanentProviderError) as info:
        mock_downloader(serve(b"", "text/plain", status)).fetch(
            "https://cdn.test/a", kind="audio", allowed_types=("audio/",)
        )
    assert info.value.message == f"The audio URL returned HTTP {status} (expired or missing)"
    assert info.value.provider == "download"


@pytest.mark.parametrize("status", [500, 503, 429])
def test_server_errors_are_retryable(status):
    with pytest.raises(RetryableProviderError):
        mock_downloader(serve(b"", "text/plain", status)).fetch(
            "https://cdn.test/a", kind="audio", allowed_types=("audio/",)
        )


def test_timeouts_are_retryable():
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(RetryableProviderError, match="timed out"):
        mock_downloader(handler).fetch("https://cdn.test/a", kind="audio", allowed_types=("audio/",))


def test_auth_headers_never_reach_artifact_hosts():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=PNG, headers={"Content-Type": "image/png"})

    client = httpx.Client(transport=httpx.MockTransport(handler), headers={"Authorization": "Bearer sk-x"})
    Downloader(client, DownloadPolicy(), resolver=public_resolver).fetch(
        "https://cdn.test/c", kind="cover", allowed_types=("image/",)
    )
    assert "authorization" not in seen[0].headers


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path == "/song.mp3":
            self._send(200, MP3, "audio/mpeg")
        elif self.path == "/hop":
            self.send_response(302)
            self.send_header("Location", "/song.mp3")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._send(404, b"missing", "text/plain")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def local_server() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_real_http_download_through_a_redirect(local_server):
    port = local_server
    with make_download_client(timeout=httpx.Timeout(5.0)) as client:
        policy = DownloadPolicy(allowed_hosts=frozenset({f"127.0.0.1:{port}"}))
        got = Downloader(client, policy).fetch(
            f"http://127.0.0.1:{port}/hop", kind="audio", allowed_types=("audio/",)
        )
        assert got.data == MP3 and got.url.endswith("/song.mp3")
        with pytest.raises(PermanentProviderError, match="404"):
            Downloader(client, policy).fetch(
                f"http://127.0.0.1:{port}/x", kind="audio", allowed_types=("audio/",)
            )
        with pytest.raises(PermanentProviderError, match="private or local"):
            Downloader(client, DownloadPolicy()).fetch(
                f"http://127.0.0.1:{port}/song.mp3", kind="audio", allowed_types=("audio/",)
            )


def test_real_connection_to_a_private_peer_is_refused_after_dns_rebinding(local_server):
    """The resolver says public, the socket lands on 127.0.0.1: the connected peer is checked too."""
    with make_download_client(timeout=httpx.Timeout(5.0)) as client:
        downloader = Downloader(client, DownloadPolicy(), resolver=public_resolver)
        with pytest.raises(PermanentProviderError, match="connected to a private"):
            downloader.fetch(
                f"http://127.0.0.1:{local_server}/song.mp3", kind="audio", allowed_types=("audio/",)
            )
