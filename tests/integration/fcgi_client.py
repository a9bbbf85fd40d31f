"""A small FastCGI client (standard library only), to speak to the pool's
socket directly, the way nginx does, but able to lie.

Tests use it where nginx would protect the daemon: nginx never forwards a
body shorter or longer than the CONTENT_LENGTH it sends, so the daemon's
own handling of such requests is only reachable from here.

    status, headers, body = request(socket_path, params, stdin=b"",
                                    close_stdin=True, timeout=30)

params is a dict of CGI parameters (REQUEST_METHOD, DOCUMENT_URI,
CONTENT_TYPE, CONTENT_LENGTH, HTTP_AUTHORIZATION, ...), sent as given:
nothing is derived from stdin.  stdin is sent in FCGI_STDIN records;
close_stdin=False leaves out the empty record that ends the stream and
keeps the connection open, as a stalled peer would.  Returns the status
from the responder's Status header (200 when it sends none), its headers
(lower-case names) and the body bytes.  Raises TimeoutError when no
complete answer arrives within `timeout` seconds, and ConnectionError when
the responder closes without ending the request.
"""

import socket
import struct
import time

FCGI_VERSION_1 = 1
FCGI_BEGIN_REQUEST = 1
FCGI_END_REQUEST = 3
FCGI_PARAMS = 4
FCGI_STDIN = 5
FCGI_STDOUT = 6
FCGI_STDERR = 7
FCGI_RESPONDER = 1
REQUEST_ID = 1
MAX_CONTENT = 65535

__all__ = ["request"]


def _record(rtype, content=b""):
    """One record: header, content, padding to a multiple of 8."""
    if len(content) > MAX_CONTENT:
        raise ValueError("record content too long")
    padding = -len(content) % 8
    return struct.pack("!BBHHBx", FCGI_VERSION_1, rtype, REQUEST_ID, len(content),
                       padding) + content + b"\0" * padding


def _records(rtype, data):
    return b"".join(_record(rtype, data[i:i + MAX_CONTENT])
                    for i in range(0, len(data), MAX_CONTENT))


def _length(n):
    return struct.pack("!B", n) if n < 128 else struct.pack("!I", n | 0x80000000)


def _params(params):
    out = b""
    for name, value in params.items():
        name = name.encode("latin-1") if isinstance(name, str) else name
        value = value.encode("latin-1") if isinstance(value, str) else value
        out += _length(len(name)) + _length(len(value)) + name + value
    return out


def _recv_exact(sock, n, deadline):
    buf = b""
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no complete FastCGI answer in time")
        sock.settimeout(left)
        try:
            chunk = sock.recv(n - len(buf))
        except socket.timeout:
            raise TimeoutError("no complete FastCGI answer in time") from None
        if not chunk:
            raise ConnectionError("responder closed the connection mid-record")
        buf += chunk
    return buf


def _parse_cgi(stdout):
    head, sep, body = stdout.partition(b"\r\n\r\n")
    if not sep:
        raise ConnectionError("no CGI header block in the answer: %r" % stdout[:200])
    headers = {}
    for line in head.split(b"\r\n"):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    status = int(headers.get("status", "200").split()[0])
    return status, headers, body


def request(socket_path, params, stdin=b"", close_stdin=True, timeout=30):
    """Sends one request over a new connection; see the module docstring."""
    deadline = time.monotonic() + timeout
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(socket_path)
        begin = struct.pack("!HB5x", FCGI_RESPONDER, 0)   # flags 0: close after
        out = _record(FCGI_BEGIN_REQUEST, begin)
        out += _records(FCGI_PARAMS, _params(params)) + _record(FCGI_PARAMS)
        out += _records(FCGI_STDIN, stdin)
        if close_stdin:
            out += _record(FCGI_STDIN)
        sock.sendall(out)
        stdout = b""
        while True:
            header = _recv_exact(sock, 8, deadline)
            _, rtype, _, clen, plen = struct.unpack("!BBHHBx", header)
            content = _recv_exact(sock, clen + plen, deadline)[:clen]
            if rtype == FCGI_STDOUT:
                stdout += content
            elif rtype == FCGI_END_REQUEST:
                return _parse_cgi(stdout)
            # FCGI_STDERR and anything else: ignored
    finally:
        sock.close()
