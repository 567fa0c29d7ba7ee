"""The address guard: every refused class, IPv6 wrappers of refused IPv4, and the allow-list."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

import pytest

from handler.config import ConfigError, Settings
from handler.inputs.netguard import AddressPolicy, AllowList, display_url

GUARD = AddressPolicy()


def refusal(address: str, *, policy: AddressPolicy = GUARD, host: str = "") -> str | None:
    return policy.refusal(ipaddress.ip_address(address), host=host)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.255.0.9", "a loopback address"),
        ("::1", "a loopback address"),
        ("10.1.2.3", "a private address (10.0.0.0/8)"),
        ("172.16.0.1", "a private address (172.16.0.0/12)"),
        ("172.31.255.254", "a private address (172.16.0.0/12)"),
        ("192.168.1.1", "a private address (192.168.0.0/16)"),
        ("fd12:3456::1", "a private address (unique local"),
        ("fec0::1", "site-local"),
        ("169.254.1.1", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("100.64.0.1", "a carrier-grade NAT address"),
        ("100.127.255.255", "a carrier-grade NAT address"),
        ("224.0.0.1", "a multicast address"),
        ("239.255.255.250", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("0.0.0.0", "an unspecified address"),
        ("0.1.2.3", "an unspecified address"),
        ("::", "an unspecified address"),
        ("240.0.0.1", "a reserved address"),
        ("255.255.255.255", "a reserved address"),
        ("192.0.2.10", "documentation"),
        ("198.18.0.1", "benchmarking"),
        ("2001:db8::1", "documentation"),
        ("169.254.169.254", "a cloud metadata service"),
        ("169.254.170.2", "a cloud metadata service (AWS ECS"),
        ("100.100.100.200", "a cloud metadata service (Alibaba"),
        ("192.0.0.192", "a cloud metadata service (Oracle"),
        ("fd00:ec2::254", "a cloud metadata service (AWS, IPv6)"),
    ],
)
def test_each_non_public_class_is_refused_with_its_name(address: str, reason: str) -> None:
    found = refusal(address)
    assert found is not None and reason in found


@pytest.mark.parametrize(
    ("address", "inner"),
    [
        ("::ffff:127.0.0.1", "a loopback address"),  # IPv4-mapped
        ("::ffff:169.254.169.254", "a cloud metadata service"),
        ("::ffff:10.0.0.1", "a private address"),
        ("::127.0.0.1", "a loopback address"),  # IPv4-compatible (deprecated)
        ("::10.0.0.1", "a private address"),
        ("2002:7f00:1::", "a loopback address"),  # 6to4 of 127.0.0.1
        ("2002:a9fe:a9fe::1", "a cloud metadata service"),  # 6to4 of 169.254.169.254
        ("64:ff9b::a9fe:a9fe", "a cloud metadata service"),  # NAT64 of 169.254.169.254
        ("64:ff9b::c0a8:0101", "a private address"),  # NAT64 of 192.168.1.1
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "a private address"),  # Teredo, client 10.0.0.1
    ],
)
def test_refused_ipv4_wrapped_in_ipv6_is_refused_too(address: str, inner: str) -> None:
    found = refusal(address)
    assert found is not None and inner in found and "wrapped in the IPv6 address" in found


def test_nat64_local_use_prefix_is_reserved() -> None:
    assert "local-use NAT64" in (refusal("64:ff9b:1::1") or "")


@pytest.mark.parametrize(
    "address",
    ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"],
)
def test_public_addresses_pass(address: str) -> None:
    assert refusal(address) is None


def test_the_allow_list_opens_named_networks_and_hosts_only() -> None:
    settings = Settings.from_env(
        {"INPUT_URL_ALLOWLIST": " minio.internal, *.corp.example ,10.0.0.0/8,::1, 127.0.0.1"}
    )
    allow = settings.input_urls.allow
    assert allow.hosts == frozenset({"minio.internal", "*.corp.example"})
    policy = AddressPolicy(allow)
    assert refusal("10.9.9.9", policy=policy) is None
    assert refusal("::ffff:10.9.9.9", policy=policy) is None  # the mapped form of an allowed address
    assert refusal("::1", policy=policy) is None
    assert refusal("127.0.0.1", policy=policy) is None
    assert refusal("127.0.0.2", policy=policy) is not None
    assert refusal("192.168.0.5", policy=policy) is not None
    assert refusal("192.168.0.5", policy=policy, host="MINIO.internal") is None
    assert refusal("192.168.0.5", policy=policy, host="s3.corp.example") is None
    assert refusal("192.168.0.5", policy=policy, host="corp.example.evil") is not None
    assert refusal("169.254.169.254", policy=policy, host="evilminio.internal") is not None


def test_no_allow_list_by_default() -> None:
    assert not Settings.from_env({}).input_urls.allow
    assert AllowList() == Settings().input_urls.allow


@pytest.mark.parametrize("entry", ["http://minio.internal", "10.0.0.0/33", "bad host", "a_b.example"])
def test_a_bad_allow_list_entry_stops_the_worker_naming_it(entry: str) -> None:
    with pytest.raises(ConfigError, match="INPUT_URL_ALLOWLIST entry"):
        Settings.from_env({"INPUT_URL_ALLOWLIST": f"ok.example,{entry}"})


def test_url_settings_are_read_and_checked() -> None:
    settings = Settings.from_env(
        {
            "INPUT_URL_MAX_JOB_BYTES": "1000",
            "INPUT_URL_CONNECT_TIMEOUT_S": "2",
            "INPUT_URL_TIMEOUT_S": "30",
            "INPUT_URL_CONCURRENCY": "2",
        }
    ).input_urls
    assert (settings.max_job_bytes, settings.connect_timeout_s, settings.timeout_s, settings.concurrency) == (
        1000,
        2.0,
        30.0,
        2,
    )
    with pytest.raises(ConfigError, match="INPUT_URL_TIMEOUT_S"):
        Settings.from_env({"INPUT_URL_TIMEOUT_S": "soon"})


def test_display_url_drops_credentials_query_and_fragment() -> None:
    shown = display_url(urlsplit("https://u:p@Files.Example:8443/a/b.png?X-Amz-Signature=s#frag"))
    assert shown == "https://files.example:8443/a/b.png"
    assert display_url(urlsplit("http://[::1]:80/x")) == "http://[::1]:80/x"
