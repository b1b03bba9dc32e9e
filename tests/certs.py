"""Test certificates for the second broker's TLS listener: a CA, a server cert, a wrong CA.

Made with openssl (EC keys, fast) at each boot of the node; see :mod:`tests.brokers`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Certificates", "certificates_in", "ensure_openssl", "make_certificates"]


def ensure_openssl() -> str:
    """The openssl binary; installed with apt-get when missing and we are root."""
    found = shutil.which("openssl")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "openssl"],
            env=env,
            capture_output=True,
            check=False,
            timeout=600,
        )
        found = shutil.which("openssl")
        if found:
            return found
    raise RuntimeError("openssl is needed to make the TLS test certificates and is missing")


@dataclass(frozen=True)
class Certificates:
    """A test CA, a server certificate it signed, and an unrelated second CA."""

    ca_file: Path
    server_cert: Path
    server_key: Path
    other_ca_file: Path  # signed nothing the broker presents: the "wrong CA"

    def exist(self) -> bool:
        return all(
            p.is_file()
            for p in (self.ca_file, self.server_cert, self.server_key, self.other_ca_file)
        )


def _openssl(openssl: str, *args: str, cwd: Path) -> None:
    proc = subprocess.run(
        [openssl, *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=60
    )
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {proc.stderr.strip()}")


def _self_signed_ca(openssl: str, directory: Path, stem: str, cn: str) -> None:
    _openssl(
        openssl,
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        f"{stem}.key",
        "-out",
        f"{stem}.pem",
        "-days",
        "30",
        "-subj",
        f"/CN={cn}",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )


def make_certificates(directory: Path) -> Certificates:
    """Make a CA, a server cert for localhost / 127.0.0.1 and an unrelated CA (EC keys: fast)."""
    openssl = ensure_openssl()
    directory.mkdir(parents=True, exist_ok=True)
    _self_signed_ca(openssl, directory, "ca", "amqptool test CA")
    _self_signed_ca(openssl, directory, "other-ca", "amqptool unrelated CA")
    _openssl(
        openssl,
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
        cwd=directory,
    )
    (directory / "server.ext").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
    )
    _openssl(
        openssl,
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "30",
        "-extfile",
        "server.ext",
        cwd=directory,
    )
    return certificates_in(directory)


def certificates_in(directory: Path) -> Certificates:
    return Certificates(
        ca_file=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        other_ca_file=directory / "other-ca.pem",
    )
