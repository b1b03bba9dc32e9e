"""Property-based: any broker URL parses or fails with SettingsError, and never shows its password.

Every password drawn here starts with ``S3CRET`` and no other part of the URL contains it, so
checking for ``S3CRET`` also catches a password that leaks in pieces.
"""

from __future__ import annotations

import contextlib
import string
from urllib.parse import quote

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from amqptool.errors import SettingsError
from amqptool.settings import BrokerEndpoint, BrokerSettings, parse_broker_url, redact_url

FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
MARK = "S3CRET"

# RFC 3986 userinfo characters that need no escaping (';' left out: it separates failover URLs)
RAW_PASSWORD_CHARS = string.ascii_letters + string.digits + "-._~!$&'()*+,=:"

schemes = st.one_of(st.sampled_from(["amqp", "amqps", "AMQP", "AmQpS", "http", ""]), st.text())
separators = st.sampled_from(["://", "://", "://", ":/", ":", "", "//"])
users = st.one_of(st.sampled_from(["guest", "", "u%20x", "user name"]), st.text(max_size=10))
hosts = st.one_of(
    st.sampled_from(
        ["localhost", "127.0.0.1", "[::1]", "[::1", "::1", "", "h\uff03st", "ä.example"]
    ),
    st.text(max_size=15),
)
ports = st.one_of(
    st.just(""),
    st.sampled_from([":5672", ":0", ":65536", ":", ":-1", ":5672:5673", ":९९"]),
    st.text(max_size=6).map(lambda t: ":" + t),
)
paths = st.one_of(
    st.sampled_from(["", "/", "//", "/%2F", "/vhost", "/a/b", "/%zz"]),
    st.text(max_size=10).map(lambda t: "/" + t),
)
queries = st.one_of(
    st.just(""),
    st.sampled_from(
        ["?heartbeat=10", "?heartbeat=x", "?heartbeat=-1", "?foo=1", "?heartbeat=1e400"]
    ),
    st.text(max_size=10).map(lambda t: "?" + t),
)
raw_passwords = st.text(RAW_PASSWORD_CHARS, max_size=12).map(lambda t: MARK + t)
any_passwords = st.text(max_size=12).map(lambda t: MARK + t)


def leaks(text: str) -> bool:
    return MARK in text or MARK.lower() in text.lower() or quote(MARK) in text


def assert_no_password_in(ep_or_error: object) -> None:
    texts = [str(ep_or_error), repr(ep_or_error)]
    if isinstance(ep_or_error, SettingsError):
        texts += [ep_or_error.user_line(), ep_or_error.message, str(ep_or_error.hint)]
    if isinstance(ep_or_error, BrokerEndpoint | BrokerSettings):
        texts.append(ep_or_error.redacted())
    for text in texts:
        assert not leaks(text), text


def parse_or_error(url: str) -> BrokerEndpoint | SettingsError:
    try:
        return parse_broker_url(url)
    except SettingsError as exc:
        assert exc.exit_code == 2 and exc.message
        return exc


@FUZZ
@given(url=st.text(max_size=80))
def test_any_string_parses_or_raises_settings_error(url: str) -> None:
    parse_or_error(url)
    with contextlib.suppress(SettingsError):
        BrokerSettings.from_url(url or None, environ={})


@FUZZ
@given(
    scheme=schemes,
    sep=separators,
    user=users,
    password=raw_passwords,
    host=hosts,
    port=ports,
    path=paths,
    query=queries,
)
def test_a_password_never_appears_in_errors_or_reprs(
    scheme: str, sep: str, user: str, password: str, host: str, port: str, path: str, query: str
) -> None:
    rest = scheme + sep + user + host + port + path + query
    assume(not leaks(rest) and ";" not in rest and "@" not in user + host + port)
    # a user name must escape the URL's structure characters; a password is checked raw
    assume(not any(c in user for c in "/?#:%") and not any(c.isspace() for c in user))
    url = f"{scheme}{sep}{user}:{password}@{host}{port}{path}{query}"
    out = parse_or_error(url)
    assert_no_password_in(out)
    if isinstance(out, BrokerEndpoint):
        assert out.password() == password
    if sep == "://":  # what redact_url recognises as a URL inside free text
        assert not leaks(redact_url(url))
        assert not leaks(redact_url(f"could not reach {url} (after 3 tries)"))


@FUZZ
@given(user=users, password=any_passwords, host=hosts, port=ports, path=paths)
def test_a_percent_encoded_password_never_appears_and_decodes_exactly(
    user: str, password: str, host: str, port: str, path: str
) -> None:
    assume(not leaks(user + host + port + path) and ";" not in user + host + port + path)
    assume("@" not in user + host + port and "/" not in user)
    url = f"amqp://{quote(user, safe='')}:{quote(password, safe='')}@{host}{port}{path}"
    out = parse_or_error(url)
    assert_no_password_in(out)
    if isinstance(out, BrokerEndpoint):
        assert out.password() == password and out.userid == user


@FUZZ
@given(password=raw_passwords, count=st.integers(1, 3), broken=st.booleans())
def test_failover_lists_redact_every_password(password: str, count: int, broken: bool) -> None:
    urls = [f"amqp://guest:{password}@host{i}:{5672 + i}/v{i}" for i in range(count)]
    if broken:
        urls.append(f"amqp://guest:{password}@hostx:port/v")
    try:
        value = BrokerSettings.from_url(";".join(urls), environ={})
    except SettingsError as exc:
        assert broken
        assert_no_password_in(exc)
        return
    assert len(value.endpoints) == count
    assert all(ep.password() == password for ep in value.endpoints)
    assert_no_password_in(value)
    assert not leaks(redact_url(";".join(urls)))


def test_a_url_without_a_scheme_does_not_echo_its_password() -> None:
    """The commonest slip: the scheme forgotten, the rest intact."""
    exc = parse_or_error(f"guest:{MARK}-x@localhost:5672//")
    assert isinstance(exc, SettingsError) and "no scheme" in exc.message
    assert_no_password_in(exc)
