"""Which webhook URLs may be called: internal addresses and non-http schemes are refused."""

import pytest

from portal.delivery.outbound import RefusedURL, check_url


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.5/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://0.0.0.0/hook",
        "https://224.0.0.1/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://localhost/hook",
    ],
)
def test_check_url_refuses_internal_addresses(url):
    with pytest.raises(RefusedURL, match="private or reserved"):
        check_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://100.64.0.1/hook",  # carrier-grade NAT
        "https://100.100.100.200/latest/meta-data",  # a cloud metadata service, in CGNAT space
        "https://198.18.0.1/hook",  # benchmarking
        "https://233.252.0.1/hook",  # multicast that is_global calls global
        "https://[2002:a00:1::]/hook",  # 6to4 carrying 10.0.0.1
        "https://[2002:7f00:1::1]/hook",  # 6to4 carrying 127.0.0.1
        "https://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/hook",  # Teredo, client 10.0.0.1
        "https://[64:ff9b::a9fe:a9fe]/latest/meta-data",  # NAT64 of 169.254.169.254
        "https://[64:ff9b::7f00:1]/hook",  # NAT64 of 127.0.0.1
        "https://[64:ff9b:1::a00:1]/hook",  # local-use NAT64 prefix
        "https://[fd00::1]/hook",  # unique local
    ],
)
def test_check_url_when_address_is_not_globally_routable_is_refused(url):
    with pytest.raises(RefusedURL, match="private or reserved"):
        check_url(url)


@pytest.mark.parametrize("url", ["https://[::ffff:93.184.216.34]/hook", "https://[64:ff9b::5db8:d822]/hook"])
def test_check_url_when_ipv6_carries_public_ipv4_is_allowed(url):
    assert check_url(url).port == 443


@pytest.mark.parametrize(
    ("url", "allowlist"),
    [
        ("https://100.100.100.200/hook", ["100.64.0.0/10"]),
        ("https://[64:ff9b::a00:1]/hook", ["64:ff9b::/96"]),
        ("https://[2002:a00:1::]/hook", ["2002::/16"]),
    ],
)
def test_check_url_when_internal_address_is_allowlisted_is_allowed(url, allowlist):
    assert check_url(url, allowlist).port == 443


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x", "gopher://1.1.1.1/"])
def test_check_url_refuses_other_schemes(url):
    with pytest.raises(RefusedURL, match="scheme"):
        check_url(url)


def test_check_url_refuses_plain_http_to_public_host():
    with pytest.raises(RefusedURL, match="must use https"):
        check_url("http://93.184.216.34/hook")


def test_check_url_allows_public_https_and_pins_its_address():
    target = check_url("https://93.184.216.34:8443/hook?x=1")
    assert target.pinned_url() == "https://93.184.216.34:8443/hook?x=1"
    assert target.host_header == "93.184.216.34:8443"


def test_check_url_allows_internal_address_in_allowlisted_network():
    assert check_url("http://127.0.0.1:9000/hook", ["127.0.0.0/8"]).address == "127.0.0.1"


def test_check_url_allows_allowlisted_host_name():
    assert check_url("http://localhost:9000/hook", ["localhost"]).hostname == "localhost"
