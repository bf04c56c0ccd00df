"""Every HTTP client checks an https server's certificate, with the CA bundle httpx would use.

The clients of a process share one TLS context (reading the CA bundle once): each must still
refuse a certificate no trusted authority signed, and SSL_CERT_FILE still names the bundle.
"""

from __future__ import annotations

import http.server
import os
import shutil
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from engine.llm.deadline import http_client, http_get


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"hello": "tls"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made by the openssl command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not installed")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def https_url(certificate: tuple[Path, Path]) -> Iterator[str]:
    """The URL of a loopback https server that presents the self-signed certificate."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/hello"
    finally:
        server.shutdown()
        server.server_close()


def test_each_client_refuses_a_certificate_no_trusted_authority_signed(https_url: str) -> None:
    for _ in range(2):
        with http_client(5.0) as client, pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            client.get(https_url)
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        http_get(https_url, timeout_s=5.0)


def test_ssl_cert_file_names_the_authorities_trusted(https_url: str, certificate: tuple[Path, Path]) -> None:
    """The context is made once per process: a process started with SSL_CERT_FILE trusts what it names."""
    code = (
        "import sys\nfrom engine.llm.deadline import http_client, http_get\n"
        "print(http_get(sys.argv[1], timeout_s=5.0).json()['hello'])\n"
        "with http_client(5.0) as client:\n    print(client.get(sys.argv[1]).json()['hello'])"
    )
    env = {**os.environ, "SSL_CERT_FILE": str(certificate[0])}
    command = [sys.executable, "-c", code, https_url]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout) == (0, "tls\ntls\n"), result.stderr
