"""A throw-away PKI for the TLS tests (the openssl CLI)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def make_test_pki(directory: Path) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, made with the openssl CLI.

    Files: ca.pem/ca.key, server.pem/server.key, client.pem/client.key (EC P-256: fast to make).
    """

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True, timeout=60)

    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    openssl("req", "-x509", *key, "-days", "1", "-subj", "/CN=test-ca", "-keyout", "ca.key", "-out", "ca.pem")
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")):
        openssl("req", *key, "-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.csr")
        (directory / f"{name}.ext").write_text(ext + "\n")
        openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            f"{name}.ext",
            "-out",
            f"{name}.pem",
        )
    return directory
