"""amqps:// against a TLS listener on the second broker node, with certificates made by the test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from amqptool.codec.envelope import Envelope, Properties
from amqptool.errors import ConnectionFailedError, ExitCode, SettingsError
from amqptool.settings import BrokerSettings, TLSOptions
from amqptool.transport import Connection
from tests.brokers import SecondBroker
from tests.passwords import SecretWitness, one_error_line


def tls_settings(url: str, ca_file: object) -> BrokerSettings:
    return BrokerSettings.from_url(url, tls=TLSOptions(ca_file=str(ca_file)), environ={})


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_amqps_with_the_right_ca_round_trips_a_message(
    broker_b: SecondBroker, unique_name: str, host: str
) -> None:
    settings = tls_settings(broker_b.tls_url(host=host), broker_b.certs.ca_file)
    with Connection(settings).connect() as conn:
        assert conn.endpoint.ssl and conn.endpoint.port == broker_b.amqps_port
        ch = conn.channel(confirm=True)
        ch.queue_declare(unique_name, auto_delete=True)
        ch.publish(
            Envelope(
                body=b'{"over": "tls"}',
                properties=Properties(content_type="application/json", content_encoding="utf-8"),
                routing_key=unique_name,
            )
        )
        got = ch.get(unique_name, no_ack=True)
        assert got is not None and got.body == b'{"over": "tls"}'
        ch.queue_delete(unique_name)


def test_amqps_with_a_wrong_ca_fails_with_a_clear_certificate_error(
    broker_b: SecondBroker,
) -> None:
    settings = tls_settings(broker_b.tls_url(), broker_b.certs.other_ca_file)
    with pytest.raises(ConnectionFailedError) as err:
        Connection(settings).connect()
    line = err.value.user_line()
    assert err.value.exit_code == ExitCode.CONNECTION
    assert int(err.value.exit_code) == 70
    assert "TLS" in line and "certificate" in line.lower() and "--ssl-ca" in line
    assert "\n" not in line and "guest:guest" not in line


def test_amqps_without_a_ca_does_not_trust_a_private_ca(broker_b: SecondBroker) -> None:
    settings = BrokerSettings.from_url(broker_b.tls_url(), environ={})
    with pytest.raises(ConnectionFailedError, match="certificate verify failed"):
        Connection(settings).connect()


def test_amqps_to_a_plain_amqp_port_is_a_tls_error_not_a_hang(broker_b: SecondBroker) -> None:
    url = f"amqps://guest:guest@localhost:{broker_b.amqp_port}//"
    with pytest.raises(ConnectionFailedError, match="TLS") as err:
        Connection(tls_settings(url, broker_b.certs.ca_file)).connect()
    assert err.value.exit_code == 70


def test_a_missing_ca_file_is_a_usage_error_naming_the_option() -> None:
    with pytest.raises(SettingsError, match="--ssl-ca: no such file") as err:
        tls_settings("amqps://guest:guest@localhost:5681//", "/nonexistent/ca.pem")
    assert err.value.exit_code == ExitCode.USAGE


@pytest.fixture
def tls_witness(broker_b: SecondBroker, tmp_path: Path) -> Iterator[SecretWitness]:
    """A user on the second node whose password is distinctive, for grepping the output."""
    witness = SecretWitness(tmp_path, user="amqptool-tls-user")
    broker_b.ctl("add_user", witness.user, witness.password)
    try:
        broker_b.ctl("set_permissions", "-p", "/", witness.user, ".*", ".*", ".*")
        yield witness
    finally:
        broker_b.ctl("delete_user", witness.user, check=False)


def tls_cli_url(witness: SecretWitness, broker: SecondBroker) -> str:
    return witness.url("localhost", broker.amqps_port).replace("amqp://", "amqps://", 1)


def test_the_shell_over_amqps_with_ssl_ca_runs_commands(
    broker_b: SecondBroker, tls_witness: SecretWitness, unique_name: str
) -> None:
    url = tls_cli_url(tls_witness, broker_b)
    ca = str(broker_b.certs.ca_file)
    proc = tls_witness.run(
        ["shell", "--json", "--ssl-ca", ca, "-b", url, "-f", "-"],
        input=f"queue.declare {unique_name}\nqueue.delete {unique_name}\n",
    )
    assert proc.returncode == 0, proc.stderr
    docs = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [d["ok"] for d in docs] == [True, True]
    tls_witness.assert_clean(proc)


def test_the_shell_with_a_wrong_ca_prints_one_tls_line_and_exits_70(
    broker_b: SecondBroker, tls_witness: SecretWitness
) -> None:
    url = tls_cli_url(tls_witness, broker_b)
    proc = tls_witness.run(
        ["shell", "--ssl-ca", str(broker_b.certs.other_ca_file), "-b", url, "queue.declare", "x"]
    )
    assert proc.returncode == 70
    line = one_error_line(proc)
    assert "TLS" in line and "certificate verify failed" in line
    tls_witness.assert_clean(proc)
