"""A minimal HTTP/1.1 client (http.client and raw sockets) for the crash and
disconnect tests, where the test must control exactly how much of a body has
left the client, and when the connection dies.

One connection per request (no keep-alive), every socket operation bounded by
a timeout. Loopback only.
"""

from __future__ import annotations

import http.client
import socket
import struct
from dataclasses import dataclass
from typing import Iterable
from urllib.parse import urljoin, urlparse

from tools.registry_api import assert_loopback

DEFAULT_TIMEOUT = 15.0


@dataclass
class Resp:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)


def absolute(base_url: str, location: str) -> str:
    """Resolve a ``Location`` (absolute, or relative to the registry root)."""
    url = urljoin(base_url + "/", location)
    assert_loopback(url)
    return url


def request(url: str, method: str, body: bytes | Iterable[bytes] | None = None,
            headers: dict[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT) -> Resp:
    """Send one request on a fresh connection. An iterable body is streamed:
    with a ``Content-Length`` header as is, otherwise with chunked encoding."""
    assert_loopback(url)
    u = urlparse(url)
    path = u.path + (f"?{u.query}" if u.query else "")
    headers = dict(headers or {})
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        chunked = False
        if body is None:
            if method in ("PUT", "POST", "PATCH"):
                headers.setdefault("Content-Length", "0")
        elif isinstance(body, (bytes, bytearray)):
            headers.setdefault("Content-Length", str(len(body)))
        elif not any(k.lower() == "content-length" for k in headers):
            chunked = True
            headers["Transfer-Encoding"] = "chunked"
        conn.putrequest(method, path, skip_accept_encoding=True)
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.endheaders()
        if body is not None:
            if isinstance(body, (bytes, bytearray)):
                conn.send(body)
            else:
                for piece in body:
                    if not piece:
                        continue
                    if chunked:
                        conn.send(b"%x\r\n" % len(piece) + piece + b"\r\n")
                    else:
                        conn.send(piece)
                if chunked:
                    conn.send(b"0\r\n\r\n")
        r = conn.getresponse()
        data = r.read() if method != "HEAD" else b""
        return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        conn.close()


def partial_request(url: str, method: str, headers: dict[str, str], sent: bytes,
                    *, rst: bool = False, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Write a request line, ``headers`` and the bytes ``sent`` (a prefix of
    what the headers promise), then drop the connection: with a FIN, or with a
    RST when ``rst`` (SO_LINGER 0). The response, if any, is not read."""
    assert_loopback(url)
    u = urlparse(url)
    path = u.path + (f"?{u.query}" if u.query else "")
    head = f"{method} {path} HTTP/1.1\r\nHost: {u.netloc}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    s = socket.create_connection((u.hostname, u.port), timeout=timeout)
    try:
        s.sendall(head.encode() + sent)
        if rst:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        s.close()


def chunked_prefix(data: bytes, piece: int = 16 * 1024) -> bytes:
    """``data`` in chunked transfer encoding, without the final 0-chunk."""
    out = bytearray()
    for i in range(0, len(data), piece):
        p = data[i:i + piece]
        out += b"%x\r\n" % len(p) + p + b"\r\n"
    return bytes(out)
