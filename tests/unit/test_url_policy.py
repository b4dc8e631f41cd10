"""The URL policy for server_url, rule by rule (a resolver stub stands in for DNS)."""

from __future__ import annotations

import pytest

from vllm_mcp_ext.servers.remote.policy import PolicyRejected, Rule, Unresolvable, UrlPolicy

DNS = {
    "mcp.example.com": ["93.184.216.34"],
    "rebind.example.com": ["127.0.0.1"],  # a public name that answers with loopback
    "metadata.example.com": ["169.254.169.254"],
    "corp.example.com": ["10.1.2.3"],
    "mixed.example.com": ["93.184.216.34", "192.168.1.10"],  # one bad answer is enough
    "ula.example.com": ["fd00::1"],
    "mapped.example.com": ["::ffff:127.0.0.1"],
    "cgnat.example.com": ["100.64.0.1"],
    "zero.example.com": ["0.0.0.0"],
    "multicast.example.com": ["224.0.0.1"],
    "v6.example.com": ["2606:4700::1111"],
    "localhost": ["127.0.0.1"],
    # IPv6 forms that embed or translate an IPv4 address are judged by it (issue 14)
    "nat64-loop.example.com": ["64:ff9b::7f00:1"],  # NAT64 of 127.0.0.1
    "nat64-private.example.com": ["64:ff9b::a00:1"],  # NAT64 of 10.0.0.1
    "nat64-metadata.example.com": ["64:ff9b::a9fe:a9fe"],  # NAT64 of 169.254.169.254
    "nat64-public.example.com": ["64:ff9b::5db8:d822"],  # NAT64 of 93.184.216.34: fine
    "nat64-local.example.com": ["64:ff9b:1::a00:1"],  # local-use NAT64 prefix
    "compat-loop.example.com": ["::7f00:1"],  # IPv4-compatible ::127.0.0.1
    "compat-private.example.com": ["::c0a8:101"],  # ::192.168.1.1
    "translated.example.com": ["::ffff:0:a9fe:a9fe"],  # IPv4-translated 169.254.169.254
    "mapped-private.example.com": ["::ffff:10.0.0.1"],
    "sixtofour.example.com": ["2002:a9fe:a9fe::1"],  # 6to4 of 169.254.169.254
    "teredo.example.com": ["2001:0:4136:e378:8000:63bf:f5ff:fffe"],  # Teredo client 10.0.0.1
    "site-local.example.com": ["fec0::1"],
    "ietf.example.com": ["192.0.0.9"],  # 192.0.0.0/24, special purpose
    "relay.example.com": ["192.88.99.1"],  # 6to4 relay anycast, deprecated
    "bench.example.com": ["198.18.0.1"],
    "reserved.example.com": ["240.0.0.1"],
    "broadcast.example.com": ["255.255.255.255"],
    "doc6.example.com": ["2001:db8::1"],
    "doc6new.example.com": ["3fff::1"],
    "discard.example.com": ["100::1"],
    "this-net.example.com": ["0.1.2.3"],
}


async def stub_resolver(host: str, port: int) -> list[str]:
    if host not in DNS:
        raise OSError("NXDOMAIN")
    return DNS[host]


def policy(**kw) -> UrlPolicy:
    return UrlPolicy(resolver=stub_resolver, **kw)


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("https://mcp.example.com/mcp", None),
        ("https://v6.example.com/mcp", None),
        ("http://mcp.example.com/mcp", Rule.HTTPS_REQUIRED),
        ("ftp://mcp.example.com/x", Rule.SCHEME),
        ("file:///etc/passwd", Rule.SCHEME),
        ("not a url", Rule.SCHEME),
        ("https://user:pw@mcp.example.com/mcp", Rule.USERINFO),
        ("https://localhost/mcp", Rule.LOCALHOST),
        ("https://LOCALHOST:8443/mcp", Rule.LOCALHOST),
        ("https://api.localhost/mcp", Rule.LOCALHOST),
        ("https://127.0.0.1/mcp", Rule.IP_LITERAL),
        ("https://[::1]/mcp", Rule.IP_LITERAL),
        ("https://10.0.0.1/mcp", Rule.IP_LITERAL),
        ("https://172.16.0.1/mcp", Rule.IP_LITERAL),
        ("https://192.168.0.1/mcp", Rule.IP_LITERAL),
        ("https://169.254.169.254/latest/meta-data", Rule.IP_LITERAL),
        ("https://[fd00::1]/mcp", Rule.IP_LITERAL),
        ("https://93.184.216.34/mcp", Rule.IP_LITERAL),
        ("https://2130706433/mcp", Rule.IP_LITERAL),  # 127.0.0.1 in legacy spellings
        ("https://0x7f.1/mcp", Rule.IP_LITERAL),
        ("https://127.1/mcp", Rule.IP_LITERAL),
        ("https://localhost./mcp", Rule.LOCALHOST),
        ("https://rebind.example.com/mcp", Rule.LOOPBACK),
        ("https://metadata.example.com/mcp", Rule.LINK_LOCAL),
        ("https://corp.example.com/mcp", Rule.PRIVATE),
        ("https://mixed.example.com/mcp", Rule.PRIVATE),
        ("https://ula.example.com/mcp", Rule.UNIQUE_LOCAL),
        ("https://mapped.example.com/mcp", Rule.LOOPBACK),
        ("https://cgnat.example.com/mcp", Rule.NOT_GLOBAL),
        ("https://zero.example.com/mcp", Rule.UNSPECIFIED),
        ("https://multicast.example.com/mcp", Rule.MULTICAST),
        ("https://nat64-loop.example.com/mcp", Rule.LOOPBACK),
        ("https://nat64-private.example.com/mcp", Rule.PRIVATE),
        ("https://nat64-metadata.example.com/mcp", Rule.LINK_LOCAL),
        ("https://nat64-public.example.com/mcp", None),
        ("https://nat64-local.example.com/mcp", Rule.NOT_GLOBAL),
        ("https://compat-loop.example.com/mcp", Rule.LOOPBACK),
        ("https://compat-private.example.com/mcp", Rule.PRIVATE),
        ("https://translated.example.com/mcp", Rule.LINK_LOCAL),
        ("https://mapped-private.example.com/mcp", Rule.PRIVATE),
        ("https://sixtofour.example.com/mcp", Rule.LINK_LOCAL),
        ("https://teredo.example.com/mcp", Rule.PRIVATE),
        ("https://site-local.example.com/mcp", Rule.NOT_GLOBAL),
        ("https://ietf.example.com/mcp", Rule.NOT_GLOBAL),
        ("https://relay.example.com/mcp", Rule.NOT_GLOBAL),
        ("https://bench.example.com/mcp", Rule.PRIVATE),
        ("https://reserved.example.com/mcp", Rule.PRIVATE),
        ("https://broadcast.example.com/mcp", Rule.PRIVATE),
        ("https://doc6.example.com/mcp", Rule.PRIVATE),
        ("https://doc6new.example.com/mcp", Rule.NOT_GLOBAL),
        ("https://discard.example.com/mcp", Rule.PRIVATE),
        ("https://this-net.example.com/mcp", Rule.PRIVATE),
        ("https://[64:ff9b::7f00:1]/mcp", Rule.IP_LITERAL),
        ("https://[::127.0.0.1]/mcp", Rule.IP_LITERAL),
    ],
)
async def test_default_policy(url: str, rule: Rule | None) -> None:
    if rule is None:
        target = await policy().admit(url)
        assert target.addresses == tuple(DNS[target.host])
        return
    with pytest.raises(PolicyRejected) as info:
        await policy().admit(url)
    assert info.value.rule is rule
    assert f"rule: {rule.value}" in info.value.message
    assert info.value.status == 400 and info.value.code == "server_url_not_allowed"


@pytest.mark.parametrize(
    ("allow", "deny", "url", "rule"),
    [
        # the allowlist overrides the defaults: names, suffixes, host:port, CIDRs
        (["127.0.0.1:8001"], [], "http://127.0.0.1:8001/mcp", None),
        (["127.0.0.1:8001"], [], "http://127.0.0.1:8002/mcp", Rule.HTTPS_REQUIRED),
        (["127.0.0.1:8001"], [], "https://127.0.0.1:8002/mcp", Rule.IP_LITERAL),
        (["corp.example.com"], [], "https://corp.example.com/mcp", None),
        ([".example.com"], [], "https://rebind.example.com/mcp", None),
        (["*.example.com"], [], "https://corp.example.com/mcp", None),
        (["10.0.0.0/8"], [], "https://corp.example.com/mcp", None),
        (["10.0.0.0/8"], [], "https://10.9.9.9/mcp", None),
        (["10.0.0.0/8"], [], "https://metadata.example.com/mcp", Rule.LINK_LOCAL),
        (["localhost"], [], "http://localhost/mcp", None),
        # the denylist wins over everything
        ([], ["mcp.example.com"], "https://mcp.example.com/mcp", Rule.DENYLIST),
        ([], ["mcp.example.com"], "https://MCP.example.com./mcp", Rule.DENYLIST),
        ([], [".example.com"], "https://v6.example.com/mcp", Rule.DENYLIST),
        ([], ["93.184.216.0/24"], "https://mcp.example.com/mcp", Rule.DENYLIST),
        ([".example.com"], ["corp.example.com"], "https://corp.example.com/mcp", Rule.DENYLIST),
        (["10.0.0.0/8"], ["10.1.0.0/16"], "https://corp.example.com/mcp", Rule.DENYLIST),
    ],
)
async def test_allow_and_deny_lists(allow: list[str], deny: list[str], url: str, rule: Rule | None) -> None:
    checked = policy(allow=allow, deny=deny)
    if rule is None:
        await checked.admit(url)
        return
    with pytest.raises(PolicyRejected) as info:
        await checked.admit(url)
    assert info.value.rule is rule


async def test_remote_mode_off_rejects_everything() -> None:
    with pytest.raises(PolicyRejected) as info:
        policy(enabled=False, allow=[".example.com"]).check("https://mcp.example.com/mcp")
    assert info.value.rule is Rule.REMOTE_DISABLED


async def test_allow_http_lets_plain_http_through_but_not_private_places() -> None:
    await policy(allow_http=True).admit("http://mcp.example.com/mcp")
    with pytest.raises(PolicyRejected) as info:
        await policy(allow_http=True).admit("http://rebind.example.com/mcp")
    assert info.value.rule is Rule.LOOPBACK


async def test_static_hosts_answer_instead_of_dns_and_are_still_checked() -> None:
    target = await policy(hosts={"tools.test": "93.184.216.34"}).admit("https://tools.test/mcp")
    assert target.addresses == ("93.184.216.34",)
    with pytest.raises(PolicyRejected) as info:
        await policy(hosts={"tools.test": "127.0.0.1"}).admit("https://tools.test/mcp")
    assert info.value.rule is Rule.LOOPBACK


async def test_unresolvable_host_is_not_a_policy_rejection() -> None:
    with pytest.raises(Unresolvable, match=r"cannot resolve nowhere\.example\.com"):
        await policy().admit("https://nowhere.example.com/mcp")


@pytest.mark.parametrize(
    ("location", "rejected"),
    [
        ("http://169.254.169.254/latest/meta-data", "169.254.169.254, a link-local address"),
        ("https://10.0.0.5/mcp", "10.0.0.5, a private address"),
        ("https://[::1]/mcp", "::1, a loopback address"),
        ("https://localhost/mcp", "localhost names this machine"),
        ("https://mcp.example.com/elsewhere", None),
    ],
)
def test_redirects_to_forbidden_places_name_the_rule(location: str, rejected: str | None) -> None:
    result = policy().check_redirect(location)
    if rejected is None:
        assert result is None
        return
    assert result is not None and result.rule is Rule.REDIRECT and rejected in result.message


def test_origin_drops_path_query_and_default_port() -> None:
    assert policy().check("https://mcp.example.com/secret/path?key=1").origin == "https://mcp.example.com"
    assert policy().check("https://mcp.example.com:8443/mcp").origin == "https://mcp.example.com:8443"


async def test_dns_lookups_that_time_out_do_not_pin_the_default_executor(monkeypatch) -> None:
    """Stuck lookups hold at most DNS_THREADS threads of their own; beyond that a lookup fails
    at once, and the loop's default executor stays free (issue 14)."""
    import asyncio
    import socket
    import threading
    import time

    from vllm_mcp_ext.servers.remote import policy as policy_module

    release = threading.Event()

    def stuck(*args, **kwargs):
        release.wait(10)
        raise socket.gaierror("timed out upstream")

    monkeypatch.setattr(policy_module.socket, "getaddrinfo", stuck)
    checked = UrlPolicy(resolve_timeout=0.2)
    try:
        start = time.perf_counter()
        results = await asyncio.gather(
            *(checked.admit(f"https://h{i}.example.com/mcp") for i in range(40)), return_exceptions=True
        )
        assert all(isinstance(r, Unresolvable) for r in results)
        assert time.perf_counter() - start < 3
        busy = [t for t in threading.enumerate() if t.name.startswith("mcp-dns")]
        assert len(busy) <= getattr(policy_module, "DNS_THREADS", 8)
        # the default executor still answers at once
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(loop.run_in_executor(None, lambda: 1), 1)
    finally:
        release.set()
