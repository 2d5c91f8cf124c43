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


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x", "gopher://1.1.1.1/"])
def test_check_url_refuses_other_schemes(url):
    with pytest.raises(RefusedURL, match="scheme"):
        check_url(url)


def test_check_url_refuses_plain_http_to_public_host():
    with pytest.raises(RefusedURL, match="must use https"):
        check_url("http://93.184.216.34/hook")


def test_check_url_allows_public_https_and_pins_its_address():
    target = check_url("https://93.184.216.34:8443/hook?x=1")
    assert target.pinned_url == "https://93.184.216.34:8443/hook?x=1"
    assert target.host_header == "93.184.216.34:8443"


def test_check_url_allows_internal_address_in_allowlisted_network():
    assert check_url("http://127.0.0.1:9000/hook", ["127.0.0.0/8"]).address == "127.0.0.1"


def test_check_url_allows_allowlisted_host_name():
    assert check_url("http://localhost:9000/hook", ["localhost"]).hostname == "localhost"
