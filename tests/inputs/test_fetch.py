"""Downloads through the guard over real loopback sockets: refusals, rebinding, caps, timeouts, TLS."""

from __future__ import annotations

import ipaddress
import logging
import socket
from pathlib import Path

import pytest

from handler.error_result import error_result
from handler.errors import InputFetchFailed, InputRefused
from handler.inputs.connector import Lookup, system_lookup
from handler.inputs.fetch import FetchLimits, JobBudget, UrlFetcher
from handler.inputs.netguard import AddressPolicy, AllowList, IPAddress
from handler.values import RemoteInput

from .conftest import PNG, TOKEN, FileServer, ip, self_signed

# Tests stand in 127.0.0.1 for "a public address": the only other address is 127.0.0.2.
LOOPBACK_ONLY = AddressPolicy(AllowList(networks=(ipaddress.ip_network("127.0.0.1/32"),)))
LIMITS = FetchLimits(max_file_bytes=1_000_000, connect_timeout_s=5.0, timeout_s=10.0)


def entry(url: str, *, kind: str = "image", headers: dict[str, str] | None = None) -> RemoteInput:
    return RemoteInput(
        name="photo.png", url=url, where="input.images[0]", kind=kind, headers=tuple((headers or {}).items())
    )


async def fetch(
    url: str,
    dest: Path,
    *,
    policy: AddressPolicy = LOOPBACK_ONLY,
    limits: FetchLimits = LIMITS,
    budget: JobBudget | None = None,
    kind: str = "image",
    headers: dict[str, str] | None = None,
    lookup: Lookup | None = None,
    ssl_context=None,
):
    async with UrlFetcher(
        policy,
        limits,
        budget or JobBudget(10_000_000),
        ssl_context=ssl_context,
        lookup=lookup or system_lookup,
    ) as fetcher:
        return await fetcher.fetch(entry(url, kind=kind, headers=headers), dest)


def fake_dns(*answers: list[str]) -> tuple[Lookup, list[str]]:
    """A DNS that gives the n-th answer to the n-th question (the last one from then on)."""
    asked: list[str] = []

    async def lookup(host: str, port: int) -> list[IPAddress]:
        asked.append(host)
        return [ip(a) for a in answers[min(len(asked), len(answers)) - 1]]

    return lookup, asked


async def test_a_file_streams_to_disk_with_its_type_from_the_bytes(files: FileServer, tmp_path: Path) -> None:
    fetched = await fetch(f"{files.url}/photo.png", tmp_path / "in")
    assert fetched.path.read_bytes() == PNG
    assert fetched.size_bytes == len(PNG) and fetched.mime_type == "image/png"  # server said octet-stream


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("127.0.0.1", "a loopback address"),
        ("[::1]", "a loopback address"),
        ("10.0.0.7", "a private address"),
        ("172.20.1.1", "a private address"),
        ("192.168.0.1", "a private address"),
        ("169.254.169.254", "a cloud metadata service"),
        ("[fd00:ec2::254]", "a cloud metadata service"),
        ("169.254.10.10", "a link-local address"),
        ("[fe80::1]", "a link-local address"),
        ("100.64.1.1", "a carrier-grade NAT address"),
        ("224.0.0.251", "a multicast address"),
        ("0.0.0.0", "an unspecified address"),
        ("240.1.2.3", "a reserved address"),
        ("[::ffff:127.0.0.1]", "wrapped in the IPv6 address"),
        ("[::ffff:a9fe:a9fe]", "a cloud metadata service"),
        ("[2002:7f00:1::1]", "a loopback address"),
        ("[64:ff9b::a9fe:a9fe]", "a cloud metadata service"),
    ],
)
async def test_each_refused_address_class_is_refused_before_connecting(
    files: FileServer, tmp_path: Path, host: str, reason: str
) -> None:
    with pytest.raises(InputRefused) as info:
        await fetch(
            f"http://{host}:{files.port}/photo.png?sig=secret", tmp_path / "in", policy=AddressPolicy()
        )
    message = error_result(info.value)["error"]
    assert message.startswith("INVALID_INPUT: input.images[0] ('photo.png') was refused")
    assert reason in message and "INPUT_URL_ALLOWLIST" in message and "secret" not in message
    assert files.seen == []  # the allowed loopback server heard nothing either


@pytest.mark.parametrize("host", ["localhost", "127.1", "2130706433", "0x7f.0.0.1", "0", "127.0.0.1."])
async def test_loopback_in_disguise_is_refused(files: FileServer, tmp_path: Path, host: str) -> None:
    with pytest.raises(InputRefused):
        await fetch(f"http://{host}:{files.port}/photo.png", tmp_path / "in", policy=AddressPolicy())
    assert files.seen == []


async def test_a_name_resolving_to_a_refused_address_is_refused(files: FileServer, tmp_path: Path) -> None:
    lookup, asked = fake_dns(["169.254.169.254", "10.0.0.1"])
    with pytest.raises(InputRefused) as info:
        await fetch(f"http://metadata.test:{files.port}/x", tmp_path / "in", lookup=lookup)
    assert "metadata.test resolves to 169.254.169.254, a cloud metadata service" in info.value.message
    assert asked == ["metadata.test"]


async def test_dns_rebinding_connects_to_the_checked_address_only(tmp_path: Path) -> None:
    # The name first answers an allowed address, then (to a second lookup) a refused one on which
    # a "private service" listens on the same port. The guard must look up once and connect there.
    public = FileServer().start()
    private = FileServer(host="127.0.0.2", port=public.port).start()
    try:
        lookup, asked = fake_dns(["127.0.0.1"], ["127.0.0.2"])
        fetched = await fetch(f"http://rebind.test:{public.port}/photo.png", tmp_path / "a", lookup=lookup)
        assert fetched.path.read_bytes() == PNG
        assert asked == ["rebind.test"]
        assert [s.host for s in public.seen] == [f"rebind.test:{public.port}"]  # Host kept
        # The next job asks again and gets the private answer: refused, and nothing reaches it.
        with pytest.raises(InputRefused, match=r"rebind.test resolves to 127.0.0.2, a loopback address"):
            await fetch(f"http://rebind.test:{public.port}/photo.png", tmp_path / "b", lookup=lookup)
        assert private.seen == []
    finally:
        public.stop()
        private.stop()


async def test_a_mixed_answer_only_ever_reaches_the_allowed_address(tmp_path: Path) -> None:
    public = FileServer().start()
    private = FileServer(host="127.0.0.2", port=public.port).start()
    try:
        lookup, _ = fake_dns(["127.0.0.2", "127.0.0.1"])  # refused first, allowed second
        fetched = await fetch(f"http://mixed.test:{public.port}/photo.png", tmp_path / "a", lookup=lookup)
        assert fetched.size_bytes == len(PNG)
        assert private.seen == [] and len(public.seen) == 1
    finally:
        public.stop()
        private.stop()


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/iam/", "a cloud metadata service"),
        ("http://[::ffff:10.0.0.1]:80/", "a private address"),
        ("http://127.0.0.2:{port}/photo.png", "a loopback address"),
        ("file:///etc/passwd", "a redirect leads to file:///etc/passwd; only http"),
        ("ftp://example.com/x", "a redirect leads to ftp://example.com/x; only http"),
    ],
)
async def test_every_redirect_is_checked_again(
    files: FileServer, tmp_path: Path, target: str, reason: str
) -> None:
    url = f"{files.url}/redirect?to={target.format(port=files.port)}"
    with pytest.raises(InputRefused) as info:
        await fetch(url, tmp_path / "in")
    assert reason in info.value.message
    assert [s.path for s in files.seen] == ["/redirect"]


async def test_a_redirect_to_a_name_resolving_to_a_refused_address_is_refused(
    files: FileServer, tmp_path: Path
) -> None:
    lookup, _ = fake_dns(["192.168.7.7"])
    with pytest.raises(InputRefused, match=r"internal.test resolves to 192.168.7.7, a private address"):
        await fetch(f"{files.url}/redirect?to=http://internal.test/x", tmp_path / "in", lookup=lookup)


async def test_allowed_redirects_are_followed_up_to_a_limit(files: FileServer, tmp_path: Path) -> None:
    fetched = await fetch(f"{files.url}/redirect?to=/photo.png", tmp_path / "in")
    assert fetched.path.read_bytes() == PNG
    with pytest.raises(InputFetchFailed, match="more than 5 redirects"):
        await fetch(f"{files.url}/loop/0", tmp_path / "in2")
    assert len([s for s in files.seen if s.path.startswith("/loop/")]) == 6


async def test_oversize_by_content_length_is_refused_before_the_body(
    files: FileServer, tmp_path: Path
) -> None:
    with pytest.raises(InputRefused) as info:
        await fetch(f"{files.url}/declared-big", tmp_path / "in")
    assert (
        "its Content-Length says 52428800 bytes, over the per-file limit of 1000000 bytes"
        in info.value.message
    )
    assert "COMFY_MAX_INPUT_BYTES" in info.value.message
    assert not (tmp_path / "in").exists()


async def test_oversize_by_stream_is_cut_off(files: FileServer, tmp_path: Path) -> None:
    with pytest.raises(InputRefused, match=r"the download passed \d+ bytes, over the per-file limit"):
        await fetch(f"{files.url}/streamed-big", tmp_path / "in")


async def test_the_job_budget_spans_all_url_inputs(files: FileServer, tmp_path: Path) -> None:
    budget = JobBudget(150_000)
    await fetch(f"{files.url}/bytes/100000", tmp_path / "a", budget=budget)
    with pytest.raises(InputRefused, match=r"together pass 150000 bytes \(INPUT_URL_MAX_JOB_BYTES\)"):
        await fetch(f"{files.url}/bytes/100000", tmp_path / "b", budget=budget)


async def test_a_slow_body_hits_the_total_timeout(files: FileServer, tmp_path: Path) -> None:
    limits = FetchLimits(max_file_bytes=1_000_000, connect_timeout_s=5.0, timeout_s=0.5)
    with pytest.raises(InputFetchFailed) as info:
        await fetch(f"{files.url}/slow.png?token=abc", tmp_path / "in", limits=limits)
    assert error_result(info.value)["error"] == (
        f"INPUT_FETCH_FAILED: input.images[0] ('photo.png') could not be downloaded from {files.url}/slow.png: "
        "the download took longer than 0.5 s (INPUT_URL_TIMEOUT_S); use a faster host or raise the limit"
    )


async def test_the_type_comes_from_the_bytes(files: FileServer, tmp_path: Path) -> None:
    with pytest.raises(InputRefused, match=r"the bytes are an HTML or XML page .*, not an image"):
        await fetch(f"{files.url}/page.html", tmp_path / "a")
    with pytest.raises(InputRefused, match=r"the bytes are application/pdf, not an image.*input.files"):
        await fetch(f"{files.url}/doc.pdf", tmp_path / "b")
    pdf = await fetch(f"{files.url}/doc.pdf", tmp_path / "c", kind="file")  # any media under files
    assert pdf.mime_type == "application/pdf"
    with pytest.raises(InputRefused, match="HTML or XML page"):
        await fetch(f"{files.url}/page.html", tmp_path / "d", kind="file")
    with pytest.raises(InputRefused, match="empty file"):
        await fetch(f"{files.url}/empty", tmp_path / "e")


async def test_http_errors_name_the_url_without_its_query(files: FileServer, tmp_path: Path) -> None:
    with pytest.raises(InputFetchFailed) as info:
        await fetch(f"{files.url}/missing.png?X-Amz-Signature=deadbeef", tmp_path / "in")
    assert info.value.message == (
        f"input.images[0] ('photo.png') could not be downloaded from {files.url}/missing.png: "
        "the server answered HTTP 404 (not found: check the URL)"
    )
    assert info.value.details["url"] == f"{files.url}/missing.png"


async def test_a_closed_port_is_a_fetch_failure(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(InputFetchFailed, match="refused the connection"):
        await fetch(f"http://127.0.0.1:{port}/x.png", tmp_path / "in")


async def test_auth_headers_go_to_the_origin_only_and_are_never_logged(
    files: FileServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    other = FileServer().start()  # another port: another origin
    try:
        with pytest.raises(InputFetchFailed, match=r"HTTP 401 \(the server wants credentials"):
            await fetch(f"{files.url}/auth.png", tmp_path / "a")
        fetched = await fetch(f"{files.url}/auth.png", tmp_path / "b", headers={"Authorization": TOKEN})
        assert fetched.path.read_bytes() == PNG
        # Redirected elsewhere, the token stays behind (as browsers and requests do).
        with pytest.raises(InputFetchFailed, match="HTTP 401"):
            await fetch(
                f"{files.url}/redirect?to={other.url}/auth.png",
                tmp_path / "c",
                headers={"Authorization": TOKEN},
            )
        assert [s.authorization for s in other.seen] == [None]
        assert [s.authorization for s in files.seen] == [None, TOKEN, TOKEN]
    finally:
        other.stop()
    assert "tok-5ecret" not in caplog.text


async def test_https_keeps_the_name_for_sni_and_certificate_while_pinned(tmp_path: Path) -> None:
    server_ctx, client_ctx = self_signed(tmp_path, "files.test")
    server = FileServer(ssl_context=server_ctx).start()
    try:
        lookup, asked = fake_dns(["127.0.0.1"])
        url = f"https://files.test:{server.port}/photo.png"
        fetched = await fetch(url, tmp_path / "in", lookup=lookup, ssl_context=client_ctx)
        assert fetched.path.read_bytes() == PNG and asked == ["files.test"]
        assert server.seen[0].host == f"files.test:{server.port}"
        # The same server by its address fails verification: the name is what is checked.
        with pytest.raises(InputFetchFailed, match="TLS certificate of https://127.0.0.1"):
            await fetch(f"https://127.0.0.1:{server.port}/photo.png", tmp_path / "b", ssl_context=client_ctx)
    finally:
        server.stop()


async def test_a_server_that_never_accepts_hits_the_connect_timeout(tmp_path: Path) -> None:
    # A listening socket whose accept queue is full: the kernel drops further SYNs, so a connect
    # hangs as it would towards a black-holed address.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        try:
            limits = FetchLimits(max_file_bytes=1_000_000, connect_timeout_s=0.3, timeout_s=10.0)
            with pytest.raises(InputFetchFailed) as info:
                await fetch(f"http://127.0.0.1:{port}/x.png", tmp_path / "in", limits=limits)
        finally:
            for filler in fillers:
                filler.close()
    assert info.value.message.endswith(
        f"no connection to http://127.0.0.1:{port}/x.png within 0.3 s (INPUT_URL_CONNECT_TIMEOUT_S)"
    )
