"""Broker settings: URL parsing, resolution order, redaction, and errors naming the bad part."""

from __future__ import annotations

import pytest

from amqptool.errors import SettingsError
from amqptool.settings import BrokerSettings, parse_broker_url, redact_url, resolve_broker_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("amqp://guest:guest@localhost:5672//", ("localhost", 5672, "guest", "/")),
        ("amqp://u:p@h/%2F", ("h", 5672, "u", "/")),
        ("amqp://u:p@h/", ("h", 5672, "u", "/")),
        ("amqp://u:p@h", ("h", 5672, "u", "/")),
        ("amqp://u:p@h:1234/myvhost", ("h", 1234, "u", "myvhost")),
        ("amqps://u:p@secure", ("secure", 5671, "u", "/")),
        ("amqp://u%40x:p%3Aw@[::1]:5673/a%2Fb", ("::1", 5673, "u@x", "a/b")),
        ("amqp://", ("localhost", 5672, "guest", "/")),
    ],
)
def test_urls_parse_into_host_port_user_vhost(url: str, expected: tuple[object, ...]) -> None:
    ep = parse_broker_url(url)
    assert (ep.host, ep.port, ep.userid, ep.vhost) == expected


def test_query_parameters_heartbeat_and_timeout() -> None:
    ep = parse_broker_url("amqp://u:p@h//?heartbeat=30&connection_timeout=2.5")
    assert (ep.heartbeat, ep.connection_timeout) == (30, 2.5)


@pytest.mark.parametrize(
    ("url", "part"),
    [
        ("amqp://x:y@host:notaport//", "port 'notaport'"),
        ("amqp://x:y@host:70000//", "port 70000"),
        ("http://x:y@host//", "scheme 'http'"),
        ("localhost:5672", "no scheme"),
        ("amqp://h//?frobnicate=1", "'frobnicate'"),
        ("amqp://h//?heartbeat=soon", "heartbeat='soon'"),
        ("amqp://x:y@host://", "port"),
    ],
)
def test_bad_urls_name_the_bad_part(url: str, part: str) -> None:
    with pytest.raises(SettingsError) as err:
        parse_broker_url(url)
    assert part in str(err.value)
    assert "y@" not in err.value.user_line()


def test_resolution_order_flag_then_amqp_url_then_celery_then_default() -> None:
    env = {"AMQP_URL": "amqp://a//", "CELERY_BROKER_URL": "amqp://c//"}
    assert resolve_broker_url("amqp://flag//", env) == "amqp://flag//"
    assert resolve_broker_url(None, env) == "amqp://a//"
    assert resolve_broker_url(None, {"CELERY_BROKER_URL": "amqp://c//"}) == "amqp://c//"
    assert resolve_broker_url(None, {}) == "amqp://guest:guest@localhost:5672//"


def test_password_never_in_repr_str_or_redacted() -> None:
    s = BrokerSettings.from_url("amqp://guest:s3cret@h:5672/v;amqp://u:hunter2@h2//", environ={})
    for text in (repr(s), str(s), s.redacted(), repr(s.primary), str(s.endpoints[1])):
        assert "s3cret" not in text and "hunter2" not in text
    assert s.redacted() == "amqp://guest:****@h:5672/v;amqp://u:****@h2:5672//"
    assert s.primary.password() == "s3cret"


def test_redact_url_in_free_text() -> None:
    text = "cannot reach amqp://guest:pw@h:5672// or amqps://bob:x@y/v now"
    assert redact_url(text) == "cannot reach amqp://guest:****@h:5672// or amqps://bob:****@y/v now"


def test_missing_tls_file_is_a_settings_error(tmp_path: object) -> None:
    from amqptool.settings import TLSOptions

    with pytest.raises(SettingsError, match="--ssl-ca"):
        BrokerSettings.from_url(
            "amqps://h//", tls=TLSOptions(ca_file="/no/such/ca.pem"), environ={}
        )
