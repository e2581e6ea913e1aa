"""Provider-returned URLs aimed at the inside of our network are refused by the downloader.

Loopback, link-local metadata (169.254.169.254), private ranges, IPv6 loopback, file://, a name that
resolves to loopback, and a redirect from a public host to any of those: all refused before a byte is
requested from them, unless DOWNLOAD_ALLOWED_HOSTS names the host. Then the same through the
pipeline: a Suno result URL on 169.254.169.254 fails the job at render_audio with a clear reason.
"""

from __future__ import annotations

import httpx
import pytest

from core.deps import build_dependencies
from core.downloads import Downloader, DownloadPolicy, make_download_client, system_resolver
from core.jobs import get_job, submit_job
from core.providers.errors import PermanentProviderError, ProviderError
from tests.conftest import run_until_done, sim_control
from tests.factories import make_user

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PUBLIC_HOST, PUBLIC_IP = "cdn.example.com", "93.184.216.34"

INSIDE = [
    "http://127.0.0.1/cover.png",
    "http://127.0.0.1:8765/files/x.png",
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://10.0.0.5/a.png",
    "http://10.255.255.255/a.png",
    "http://172.16.3.4/a.png",
    "http://192.168.1.10/a.png",
    "http://[::1]/a.png",
    "http://[::ffff:127.0.0.1]/a.png",
    "http://[fe80::1]/a.png",
    "http://0.0.0.0/a.png",
    "http://localhost/a.png",
    "http://LOCALHOST:8080/a.png",
    "http://2130706433/a.png",  # 127.0.0.1 as one decimal number
    "http://0x7f000001/a.png",
    "http://100.64.0.1/a.png",  # carrier-grade NAT
]
BAD_SCHEMES = ["file:///etc/passwd", "ftp://ftp.example.com/a.png", "gopher://127.0.0.1:6379/_FLUSHALL"]


def resolver(host: str, port: int) -> list[str]:
    return [PUBLIC_IP] if host == PUBLIC_HOST else system_resolver(host, port)


class Recorder:
    """The process edge: records which hosts were actually asked, serves a PNG or a redirect."""

    def __init__(self, redirect_to: str | None = None) -> None:
        self.hosts: list[str] = []
        self.redirect_to = redirect_to

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.hosts.append(request.url.host)
        if self.redirect_to and request.url.host == PUBLIC_HOST:
            return httpx.Response(302, headers={"Location": self.redirect_to})
        return httpx.Response(200, content=PNG, headers={"Content-Type": "image/png"})


def downloader(edge: Recorder, **policy) -> Downloader:
    client = make_download_client(timeout=httpx.Timeout(5.0), transport=httpx.MockTransport(edge))
    return Downloader(client, DownloadPolicy(**policy), resolver=resolver)


def _fetch(d: Downloader, url: str):
    return d.fetch(url, kind="cover", allowed_types=("image/",))


@pytest.mark.parametrize("url", INSIDE + BAD_SCHEMES)
def test_urls_into_our_network_are_refused_before_any_request(hostile, url):
    edge = Recorder()
    err = hostile.refused(
        f"download {url}", lambda: _fetch(downloader(edge), url), exc=PermanentProviderError
    )
    hostile.held(f"no request sent for {url}", edge.hosts == [])
    assert "refused" in err.message or "http or https" in err.message
    assert "169.254" not in err.message and "passwd" not in err.message  # URLs are never echoed


@pytest.mark.parametrize("target", INSIDE + BAD_SCHEMES[:1])
def test_a_redirect_from_a_public_host_into_our_network_is_refused(hostile, target):
    edge = Recorder(redirect_to=target)
    hostile.refused(
        f"redirect to {target}",
        lambda: _fetch(downloader(edge), f"https://{PUBLIC_HOST}/cover.png"),
        exc=PermanentProviderError,
    )
    hostile.held(f"redirect to {target} never followed", edge.hosts == [PUBLIC_HOST])


def test_a_public_url_still_downloads():
    edge = Recorder()
    got = _fetch(downloader(edge), f"https://{PUBLIC_HOST}/cover.png")
    assert got.data == PNG and edge.hosts == [PUBLIC_HOST]


def test_a_host_allowed_by_config_is_fetched_and_only_that_host_and_port(settings, hostile):
    edge = Recorder()
    allowed = build_dependencies(
        settings.model_copy(update={"download_allowed_hosts": "127.0.0.1:9000,metadata.internal"}),
        http_transport=httpx.MockTransport(edge),
    )
    try:
        assert _fetch(allowed.downloader, "http://127.0.0.1:9000/x.png").data == PNG
        for url in ("http://127.0.0.1:9001/x.png", "http://169.254.169.254/x.png", "http://10.0.0.1/x.png"):
            hostile.refused(
                f"not allowed {url}", lambda u=url: _fetch(allowed.downloader, u), exc=ProviderError
            )
    finally:
        allowed.close()
    assert edge.hosts == ["127.0.0.1"]


def test_a_job_whose_song_url_points_at_the_metadata_service_fails_at_render_audio(deps, sim, hostile):
    """The simulator hands out its file URLs on another host: the link-local metadata address."""
    sim_control(sim, "/_sim/config", {"public_base_url": "http://169.254.169.254"})
    job = submit_job(deps, make_user(deps), "a sea shanty about lighthouses")
    status = run_until_done(deps, [job.id], timeout=30)
    detail = get_job(deps, make_user(deps, "root", admin=True), job.id)
    hostile.held(
        "Suno result URL on 169.254.169.254",
        status[str(job.id)] == "failed" and detail.error_step == "render_audio" and detail.audio is None,
    )
    assert "private or local address" in (detail.error_message or ""), detail.error_message
    assert "169.254" not in (detail.error_message or "")
    stats = sim_control(sim, "/_sim/stats", method="GET")
    assert stats["submissions"]["music"] == 1  # it did get as far as a finished Suno task
    assert not any("/files/" in str(r.get("path", "")) for r in stats.get("requests", []))
