"""Berth over TLS with real clients, against a CA this test makes.

The server listens on ``[::1]`` under the name ``berth-tls.test`` (mapped in /etc/hosts for the
module, and removed after): docker counts registries on 127.0.0.0/8 as insecure and would then
skip certificate checks, so a name resolving to 127.x would prove nothing. Each client is shown
refusing the server without the CA (so it really verifies) and working with it: docker through
``/etc/docker/certs.d/<host:port>/ca.crt``, skopeo and podman with ``--cert-dir``, the aws CLI
with ``--ca-bundle``. Then the certificate files are replaced while the server runs.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import shutil
import tempfile
import socket
import ssl
import time
import uuid
from pathlib import Path

import pytest
import requests

from conftest import spawn_berth
from tools.berth import backend_env
from tools.containers import Podman, Skopeo
from tools.images import layer_files, layer_tar, oci_layout_ref, write_oci_layout
from tools.proc import run

x509 = pytest.importorskip("cryptography.x509")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

HOST = "berth-tls.test"
KEY, SECRET = "AKIATLSTEST000000001", "tls-test-secret-key-00000000000000000000"
HOSTS = Path("/etc/hosts")
MARK = "# berth test_tls.py"


# -- a CA and certificates ---------------------------------------------------------------------


def _name(cn: str):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca():
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name("berth test CA")).issuer_name(_name("berth test CA"))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def make_leaf(ca, cn: str):
    ca_key, ca_cert = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    import ipaddress
    san = x509.SubjectAlternativeName([x509.DNSName(HOST), x509.DNSName("localhost"),
                                       x509.IPAddress(ipaddress.ip_address("::1"))])
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(san, critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return key, cert


def pem_cert(cert) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def write_pair(d: Path, pair) -> None:
    key, cert = pair
    # Written aside and renamed, as a certificate manager does.
    for name, data in (("server.key", pem_key(key)), ("server.crt", pem_cert(cert))):
        tmp = d / (name + ".new")
        tmp.write_bytes(data)
        tmp.replace(d / name)


def served_cert(port: int, cafile: Path) -> x509.Certificate:
    ctx = ssl.create_default_context(cafile=str(cafile))
    with socket.create_connection(("::1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=HOST) as s:
            return x509.load_der_x509_certificate(s.getpeercert(binary_form=True))


# -- the server ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hosts_entry():
    line = f"::1 {HOST} {MARK}\n"
    original = HOSTS.read_text()
    if not os.access(HOSTS, os.W_OK):
        pytest.skip("cannot map berth-tls.test in /etc/hosts (not root)")
    HOSTS.write_text(original + ("" if original.endswith("\n") else "\n") + line)
    try:
        yield HOST
    finally:
        HOSTS.write_text("".join(ln for ln in HOSTS.read_text().splitlines(keepends=True) if MARK not in ln))


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca = make_ca()
    (d / "ca.crt").write_bytes(pem_cert(ca[1]))
    write_pair(d, make_leaf(ca, "berth one"))
    return d, ca


@pytest.fixture(scope="module")
def tls_berth(tmp_path_factory, pki, hosts_entry):
    d, _ = pki
    env = dict(os.environ, BERTH_ADMIN_ACCESS_KEY_ID=KEY, BERTH_ADMIN_SECRET_ACCESS_KEY=SECRET)
    data = tmp_path_factory.mktemp("tls") / "data"
    berth = spawn_berth(data, ["--tls-cert", str(d / "server.crt"), "--tls-key", str(d / "server.key")],
                        env=env, listen="[::1]:0")
    try:
        yield berth
    finally:
        berth.stop()


def _port(berth) -> int:
    return int(berth.url.rsplit(":", 1)[1])


def _hostport(berth) -> str:
    return f"{HOST}:{_port(berth)}"


# -- tests ----------------------------------------------------------------------------------------


def test_https_only_tls12_and_13_with_h2_by_alpn(tls_berth, pki):
    d, _ = pki
    assert tls_berth.url.startswith("https://[::1]:"), tls_berth.url
    port = _port(tls_berth)
    for version, ok in ((ssl.TLSVersion.TLSv1_2, True), (ssl.TLSVersion.TLSv1_3, True)):
        ctx = ssl.create_default_context(cafile=str(d / "ca.crt"))
        ctx.minimum_version = ctx.maximum_version = version
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        with socket.create_connection(("::1", port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname=HOST) as s:
                assert s.version() == {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
                assert s.selected_alpn_protocol() == "h2"
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    try:
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):
        pytest.skip("this OpenSSL cannot even offer TLS 1.1")
    with socket.create_connection(("::1", port), timeout=5) as raw:
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            ctx.wrap_socket(raw, server_hostname=HOST)
    # plain HTTP on the TLS port gets no HTTP answer
    r = requests.Session()
    r.trust_env = False
    with pytest.raises(requests.RequestException):
        r.get(f"http://[::1]:{port}/v2/", timeout=5)


def test_blob_pull_streams_over_tls(tls_berth, pki):
    """No sendfile under TLS: the blob still arrives whole, over HTTP/1.1."""
    d, _ = pki
    s = requests.Session()
    s.trust_env = False
    s.verify = str(d / "ca.crt")
    base = f"https://{_hostport(tls_berth)}"
    data = os.urandom(3 * 1024 * 1024 + 17)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    auth = ("AWS", _token(tls_berth, pki))
    r = s.post(f"{base}/v2/tls/blobs/uploads/?digest={digest}", data=data, auth=auth, timeout=30)
    assert r.status_code == 201, r.text
    got = s.get(f"{base}/v2/tls/blobs/{digest}", auth=auth, timeout=30)
    assert got.status_code == 200 and got.content == data


def _aws(berth, pki, *args, ca: bool = True, scheme: str = "https", check: bool = True, who=(KEY, SECRET)):
    d, _ = pki
    env = dict(os.environ, AWS_ACCESS_KEY_ID=who[0], AWS_SECRET_ACCESS_KEY=who[1], AWS_DEFAULT_REGION="us-east-1")
    for k in ("AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CA_BUNDLE", "HTTPS_PROXY", "https_proxy"):
        env.pop(k, None)
    endpoint = f"{scheme}://{HOST}:{berth.url.rsplit(':', 1)[1]}" if scheme == "https" else berth.url
    argv = ["aws", "ecr", *args, "--endpoint-url", endpoint, "--output", "json"]
    if ca and scheme == "https":
        argv += ["--ca-bundle", str(d / "ca.crt")]
    return run(argv, env=env, timeout=60, check=check)


def _token(berth, pki) -> str:
    return _aws(berth, pki, "get-login-password").stdout.strip()


def test_aws_cli_verifies_with_ca_bundle(tls_berth, pki):
    refused = _aws(tls_berth, pki, "describe-repositories", ca=False, check=False)
    assert refused.returncode != 0 and "SSL" in refused.stderr + refused.stdout, refused.stderr
    _aws(tls_berth, pki, "create-repository", "--repository-name", "tls/aws")
    out = json.loads(_aws(tls_berth, pki, "describe-repositories").stdout)
    assert "tls/aws" in [r["repositoryName"] for r in out["repositories"]]


def test_secure_transport_follows_the_connection(tmp_path, pki, hosts_entry):
    """A user allowed everything only when aws:SecureTransport is true: refused over plain HTTP,
    served over TLS, on the same data."""
    d, _ = pki
    env = dict(os.environ, BERTH_ADMIN_ACCESS_KEY_ID=KEY, BERTH_ADMIN_SECRET_ACCESS_KEY=SECRET)
    data = tmp_path / "data"
    binary = os.environ.get("BERTH_BIN") or str(Path(__file__).resolve().parents[3] / "target/debug/berth")

    def admin(*args):
        return run([binary, "admin", "--data", str(data), *args], env=backend_env(data, env), timeout=30).stdout

    allow = tmp_path / "allow.json"
    allow.write_text(json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "ecr:*", "Resource": "*",
        "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]}))
    plain = spawn_berth(data, env=env)
    try:
        admin("create-user", "--user", "tls-only")
        admin("attach-policy", "--user", "tls-only", "--name", "tls-only", "--document", str(allow))
        creds = admin("create-access-key", "--user", "tls-only", "--profile", "tls-only")
        user = (re.search(r"aws_access_key_id\s*=\s*(\S+)", creds).group(1),
                re.search(r"aws_secret_access_key\s*=\s*(\S+)", creds).group(1))
        deadline = time.monotonic() + 15
        while True:  # a running server sees identity changes within 5 s
            r = _aws(plain, pki, "create-repository", "--repository-name", "tls/only", scheme="http",
                     check=False, who=user)
            if "AccessDenied" in r.stderr or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert "AccessDeniedException" in r.stderr, r.stderr + r.stdout
    finally:
        plain.stop()
    secure = spawn_berth(data, ["--tls-cert", str(d / "server.crt"), "--tls-key", str(d / "server.key")],
                         env=env, listen="[::1]:0")
    try:
        _aws(secure, pki, "create-repository", "--repository-name", "tls/only", who=user)
    finally:
        secure.stop()


def test_docker_trusts_the_ca_through_certs_d(tls_berth, pki, dockerd, tmp_path):
    d, _ = pki
    hostport = _hostport(tls_berth)
    rootfs = layer_tar(layer_files("docker-tls", 1024 * 1024))
    (tmp_path / "rootfs.tar").write_bytes(rootfs)
    ref = f"{hostport}/tls/docker:v1"
    dockerd.docker("import", tmp_path / "rootfs.tar", ref)
    refused = dockerd.docker("push", ref, check=False)
    assert refused.returncode != 0 and "certificate" in refused.stdout + refused.stderr, \
        f"docker pushed without trusting the CA:\n{refused.stdout}{refused.stderr}"
    certs = Path("/etc/docker/certs.d") / hostport
    certs.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copy(d / "ca.crt", certs / "ca.crt")
        dockerd.docker("push", ref)
        dockerd.docker("rmi", ref)
        dockerd.docker("pull", ref)
    finally:
        shutil.rmtree(certs, ignore_errors=True)


def test_skopeo_and_podman_with_cert_dir(tls_berth, pki, tmp_path):
    d, _ = pki
    hostport = _hostport(tls_berth)
    # Their registries.conf marks another host insecure, never this one.
    short = Path(tempfile.mkdtemp(prefix="bt-", dir="/tmp"))  # podman wants a short runroot
    skopeo = Skopeo(short / "s", "127.0.0.1:1")
    podman = Podman(short / "p", "127.0.0.1:1")
    if not (skopeo.available() and podman.available()):
        pytest.skip("skopeo or podman is not installed")
    certdir = tmp_path / "certs"
    certdir.mkdir()
    shutil.copy(d / "ca.crt", certdir / "ca.crt")
    layout = tmp_path / "layout"
    write_oci_layout(layout, seed="tls-skopeo")
    dest = f"docker://{hostport}/tls/skopeo:single"
    refused = skopeo("copy", "--dest-tls-verify=true", f"oci:{layout}:single", dest, check=False)
    assert refused.returncode != 0 and "certificate" in refused.stderr, refused.stderr
    skopeo("copy", "--preserve-digests", "--dest-cert-dir", certdir, f"oci:{layout}:single", dest)
    raw = skopeo("inspect", "--raw", "--cert-dir", certdir, dest).stdout.encode()
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == oci_layout_ref(layout, "single")
    try:
        podman("pull", "--cert-dir", certdir, "--tls-verify=true", f"{hostport}/tls/skopeo:single")
    finally:
        shutil.rmtree(short, ignore_errors=True)


def test_certificate_reloads_without_restart(tls_berth, pki):
    d, ca = pki
    port = _port(tls_berth)
    first = served_cert(port, d / "ca.crt")
    write_pair(d, make_leaf(ca, "berth two " + uuid.uuid4().hex[:6]))
    deadline = time.monotonic() + 15
    now = first
    while now.serial_number == first.serial_number and time.monotonic() < deadline:
        time.sleep(0.5)
        now = served_cert(port, d / "ca.crt")
    assert now.serial_number != first.serial_number, "the new certificate was not served"
    assert now.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value.startswith("berth two")
    # A broken pair keeps the one in service.
    (d / "server.key").write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    deadline = time.monotonic() + 15
    while "not reloaded" not in tls_berth.log_tail(200) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert "not reloaded" in tls_berth.log_tail(200)
    assert served_cert(port, d / "ca.crt").serial_number == now.serial_number
    write_pair(d, make_leaf(ca, "berth three"))  # leave a good pair for later tests
    deadline = time.monotonic() + 15
    while served_cert(port, d / "ca.crt").serial_number == now.serial_number and time.monotonic() < deadline:
        time.sleep(0.5)
