"""Fake receivers for the outbox dispatcher's side effects (stdlib only).

OrderService: an HTTP server (a thread) standing in for the e-commerce
order service.  It records every request and answers
POST /api/v2/manual_course_enrollment_order/ per a scriptable plan:

    orders = OrderService(stack.ORDER_PORT).start()
    orders.fail_line = lambda line: "No seat" if line["email"] == "x" else None
    orders.script(500, "slow:2", "ok")   # next requests: 500, a 2 s delay, normal
    ...
    orders.requests        # [Request(path, headers (lower-case keys), body, json)]
    orders.planned_requests  # those answered per the plan (not refused for the token)
    orders.lines()         # every line received, in order
    orders.keys_seen()     # collections.Counter of line idempotency keys
    orders.delivered_keys()  # keys answered "success" (what a deduping service stores)
    orders.created()       # Counter of orders created: each line key once (dedup)
    orders.duplicates      # lines received again after their order was created
    orders.stop()          # "down": nothing listens on the port any more

Deduplication (SPEC §5: at-least-once with an idempotency key): a line
whose idempotency_key already created an order is answered "success"
again without creating another, and counted in orders.duplicates; a
request is recorded when it arrives (before a "slow:S" step), so a
dispatcher killed while waiting leaves a request the service did receive.

OAuth2 (SPEC §5): with orders.oauth = True the same server also answers
POST /oauth2/access_token (client credentials, a form) with
{"access_token": "tok-<instance>-N", "expires_in": orders.token_ttl}, records each
form in orders.token_requests, and answers order requests 401 unless they
carry "Authorization: JWT <a token it issued>"; orders.revoke_tokens()
makes the issued tokens invalid.

Script steps (consumed one per request; when none is left, "ok"):
    "ok"        200 {"orders": [...]}: "success" per line, or "failure" with
                the detail fail_line(line) returns when it returns a string
    an int      that HTTP status with {"detail": "scripted <status>"}
    "slow:S"    sleep S seconds, then "ok" (the dispatcher may time out)
    "garbage"   200 with a body that is not JSON
    "short"     200 with one order fewer than lines

SmtpServer: a threaded SMTP server speaking enough of RFC 5321 for libcurl
(EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT), recording each accepted
message; reject_rcpt (a set of lower-case addresses) answers RCPT with 550.
It never offers STARTTLS (a server whose STARTTLS an attacker stripped).

    smtp = SmtpServer(stack.SMTP_PORT).start()
    smtp.messages          # [Message(mail_from, rcpts, data bytes, connection)]
    smtp.connections       # how many connections were accepted
    smtp.offer_auth = True # EHLO offers AUTH PLAIN LOGIN, and any AUTH is accepted
    smtp.auth_lines        # every line of an AUTH exchange the client sent
    smtp.commands          # every command line received (not the DATA)
    smtp.data_delay = S    # keep each message, then wait S seconds before the 250
    smtp.by_message_id()   # Counter of Message-IDs accepted (a receiver dedupes on it)
    smtp.duplicates()      # messages accepted again under a Message-ID already seen
    smtp.stop()
"""

import collections
import http.server
import json
import os
import socket
import socketserver
import threading
import time
import urllib.parse

ORDER_PATH = "/api/v2/manual_course_enrollment_order/"
TOKEN_PATH = "/oauth2/access_token"

Request = collections.namedtuple("Request", "path headers body json")
Message = collections.namedtuple("Message", "mail_from rcpts data connection")


def _wait_for(lock, items, n, timeout, who, what):
    """Polls a recorded list until it holds n entries; returns a copy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with lock:
            if len(items) >= n:
                return list(items)
        time.sleep(0.05)
    raise AssertionError("%s: %d %s after %s s, wanted %d" % (who, len(items), what, timeout, n))


class _ReusableThreadingServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """Tracks its open connections so that stop() really means "down": a
    client holding a kept-alive connection must not reach a stopped
    receiver through it."""

    allow_reuse_address = True
    daemon_threads = True

    def server_activate(self):
        self.open_connections = set()
        self.connections_lock = threading.Lock()
        super().server_activate()

    def process_request(self, request, client_address):
        with self.connections_lock:
            self.open_connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.connections_lock:
            self.open_connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        pass  # a client that gave up (a timeout test) is not an error here

    def close_all(self):
        """Stops accepting, then cuts every open connection."""
        self.shutdown()
        self.server_close()
        with self.connections_lock:
            conns = list(self.open_connections)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _HTTPServer(_ReusableThreadingServer, http.server.HTTPServer):
    pass


class OrderService:
    """A fake order service on 127.0.0.1:port (see the module docstring)."""

    def __init__(self, port, host="127.0.0.1"):
        self.address = (host, port)
        self.lock = threading.Lock()
        self.requests = []
        self.planned_requests = []    # those answered by the plan (not 401 for a token)
        self._steps = collections.deque()
        self._delivered = collections.Counter()
        self._created = collections.Counter()
        self.duplicates = 0
        self.fail_line = lambda line: None
        self.oauth = False
        self.token_ttl = 3600
        self.token_requests = []
        self._valid_tokens = set()
        # unique per instance: a token cached from another test's server is stale
        self._token_prefix = os.urandom(4).hex()
        self._server = None
        self._thread = None

    # -- plan

    def script(self, *steps):
        """Queues answers for the next requests (see the module docstring)."""
        with self.lock:
            self._steps.extend(steps)

    def revoke_tokens(self):
        with self.lock:
            self._valid_tokens.clear()

    # -- what was received

    def lines(self):
        with self.lock:
            return [line for r in self.requests if r.json for line in r.json.get("enrollments", [])]

    def keys_seen(self):
        return collections.Counter(line.get("idempotency_key") for line in self.lines())

    def delivered_keys(self):
        """Keys answered "success": a real service would create each order once."""
        with self.lock:
            return collections.Counter(self._delivered)

    def created(self):
        """Orders created, by line key: 1 each, however often a line came."""
        with self.lock:
            return collections.Counter(self._created)

    def wait_for_requests(self, n, timeout=10):
        return _wait_for(self.lock, self.requests, n, timeout, "order service", "requests")

    # -- lifecycle

    def start(self):
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):  # keep test output clean
                pass

            def do_POST(self):  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                owner._answer(self, body)

            def do_GET(self):  # noqa: N802
                self._send(405, {"detail": "Method not allowed."})

            def _send(self, status, obj=None, raw=None):
                data = raw if raw is not None else json.dumps(obj).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = _HTTPServer(self.address, Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.close_all()
            self._thread.join(5)
            self._server = None

    # -- the answer

    def _answer(self, handler, body):
        try:
            doc = json.loads(body.decode("utf-8"))
        except ValueError:
            doc = None
        headers = {k.lower(): v for k, v in handler.headers.items()}
        if handler.path == TOKEN_PATH and self.oauth:
            form = urllib.parse.parse_qs(body.decode("ascii", "replace"), strict_parsing=True)
            with self.lock:
                self.token_requests.append({k: v[0] for k, v in form.items()})
                tok = "tok-%s-%d" % (self._token_prefix, len(self.token_requests))
                self._valid_tokens.add(tok)
            handler._send(200, {"access_token": tok, "token_type": "JWT",
                                "expires_in": self.token_ttl, "scope": "read write"})
            return
        with self.lock:
            self.requests.append(Request(handler.path, headers, body, doc))
        if handler.path != ORDER_PATH:
            handler._send(404, {"detail": "Not found."})
            return
        with self.lock:
            if self.oauth and not any(headers.get("authorization") == "JWT " + t
                                      for t in self._valid_tokens):
                step = 401   # refused before the plan is consulted
            else:
                step = self._steps.popleft() if self._steps else "ok"
                self.planned_requests.append(self.requests[-1])
        if isinstance(step, int):
            handler._send(step, {"detail": "scripted %d" % step})
            return
        if step.startswith("slow:"):
            time.sleep(float(step[5:]))
            step = "ok"
        if step == "garbage":
            handler._send(200, raw=b"<html>not json</html>")
            return
        lines = (doc or {}).get("enrollments") or []
        orders = []
        for line in lines:
            detail = self.fail_line(line)
            if detail is None:
                key = line.get("idempotency_key")
                with self.lock:
                    self._delivered[key] += 1
                    if self._created[key]:
                        self.duplicates += 1
                    else:
                        self._created[key] = 1
                orders.append({"status": "success", "detail": "created"})
            else:
                orders.append({"status": "failure", "detail": detail})
        if step == "short":
            orders = orders[:-1]
        handler._send(200, {"orders": orders})


class _SmtpHandler(socketserver.StreamRequestHandler):
    timeout = 30

    def _reply(self, text):
        self.wfile.write(text.encode("ascii") + b"\r\n")
        self.wfile.flush()

    def handle(self):
        owner = self.server.owner
        with owner.lock:
            owner.connections += 1
            conn_no = owner.connections
        self._reply("220 fake-smtp ready")
        mail_from, rcpts = None, []
        while True:
            line = self.rfile.readline(4096)
            if not line:
                return
            cmd = line.rstrip(b"\r\n").decode("utf-8", "replace")
            verb = cmd.split(" ", 1)[0].upper()
            arg = cmd[len(verb):].strip()
            with owner.lock:
                owner.commands.append(cmd)
            if verb == "EHLO":
                auth = b"250-AUTH PLAIN LOGIN\r\n" if owner.offer_auth else b""
                self.wfile.write(b"250-fake-smtp\r\n" + auth + b"250-8BITMIME\r\n250 SMTPUTF8\r\n")
                self.wfile.flush()
            elif verb == "AUTH":
                self._auth(owner, cmd)
            elif verb == "HELO":
                self._reply("250 fake-smtp")
            elif verb == "MAIL":
                mail_from, rcpts = _address(arg), []
                self._reply("250 2.1.0 OK")
            elif verb == "RCPT":
                addr = _address(arg)
                if mail_from is None:
                    self._reply("503 5.5.1 MAIL first")
                elif addr.lower() in owner.reject_rcpt:
                    self._reply("550 5.1.1 <%s>: no such user" % addr)
                else:
                    rcpts.append(addr)
                    self._reply("250 2.1.5 OK")
            elif verb == "DATA":
                if not rcpts:
                    self._reply("503 5.5.1 RCPT first")
                    continue
                self._reply("354 end with <CRLF>.<CRLF>")
                data = []
                while True:
                    dl = self.rfile.readline(65536)
                    if not dl:
                        return
                    if dl == b".\r\n":
                        break
                    if dl.startswith(b".."):
                        dl = dl[1:]  # dot-unstuffing
                    data.append(dl)
                # Kept on arrival, as a real server that queued it before a
                # client vanished without waiting for the reply.
                with owner.lock:
                    owner.messages.append(Message(mail_from, list(rcpts), b"".join(data), conn_no))
                mail_from, rcpts = None, []
                if owner.data_delay:
                    time.sleep(owner.data_delay)
                self._reply("250 2.0.0 queued")
            elif verb == "RSET":
                mail_from, rcpts = None, []
                self._reply("250 2.0.0 OK")
            elif verb == "NOOP":
                self._reply("250 2.0.0 OK")
            elif verb == "QUIT":
                self._reply("221 2.0.0 bye")
                return
            else:
                self._reply("502 5.5.2 command not implemented")


    def _auth(self, owner, cmd):
        """Any AUTH succeeds; every line of it is recorded."""
        with owner.lock:
            owner.auth_lines.append(cmd)
        words = cmd.split()
        mech = words[1].upper() if len(words) > 1 else ""
        prompts = {"LOGIN": ["334 VXNlcm5hbWU6", "334 UGFzc3dvcmQ6"][len(words) - 2:],
                   "PLAIN": ["334 "] if len(words) == 2 else []}.get(mech, [])
        for prompt in prompts:
            self._reply(prompt)
            line = self.rfile.readline(4096).rstrip(b"\r\n").decode("ascii", "replace")
            with owner.lock:
                owner.auth_lines.append(line)
        self._reply("235 2.7.0 accepted")


def _address(arg):
    """The address in 'FROM:<a@b> SIZE=1' / 'TO:<a@b>'."""
    start, end = arg.find("<"), arg.find(">")
    if start >= 0 and end > start:
        return arg[start + 1:end]
    return arg.split(":", 1)[-1].strip()


class SmtpServer:
    """A fake SMTP server on 127.0.0.1:port (see the module docstring)."""

    def __init__(self, port, host="127.0.0.1"):
        self.address = (host, port)
        self.lock = threading.Lock()
        self.messages = []
        self.connections = 0
        self.reject_rcpt = set()
        self.offer_auth = False
        self.auth_lines = []
        self.commands = []
        self.data_delay = 0
        self._server = None
        self._thread = None

    def start(self):
        self._server = _ReusableThreadingServer(self.address, _SmtpHandler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.close_all()
            self._thread.join(5)
            self._server = None

    def wait_for_messages(self, n, timeout=10):
        return _wait_for(self.lock, self.messages, n, timeout, "smtp", "messages")

    def by_message_id(self):
        import email
        with self.lock:
            msgs = list(self.messages)
        return collections.Counter(email.message_from_bytes(m.data)["Message-ID"] for m in msgs)

    def duplicates(self):
        return sum(n - 1 for n in self.by_message_id().values())


def main(argv=None):
    """`receivers.py --order-port P --smtp-port Q`: both fakes in the
    foreground for the dev stack (tests/stack.sh run), printing one line per
    order line and per e-mail they accept, until SIGTERM/SIGINT."""
    import argparse
    import email
    import email.header
    import signal
    import sys

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--order-port", type=int, required=True)
    ap.add_argument("--smtp-port", type=int, required=True)
    args = ap.parse_args(argv)
    orders = OrderService(args.order_port).start()
    smtp = SmtpServer(args.smtp_port).start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print("receivers: order service on 127.0.0.1:%d, SMTP on 127.0.0.1:%d"
          % (args.order_port, args.smtp_port), flush=True)
    seen_requests = seen_messages = 0
    while not stop.wait(0.2):
        with orders.lock:
            new_requests = orders.requests[seen_requests:]
            seen_requests = len(orders.requests)
        for req in new_requests:
            for line in (req.json or {}).get("enrollments") or []:
                print("order: %s %s %s (%s)" % (line.get("email"), line.get("course_run_key"),
                                                line.get("mode"), line.get("idempotency_key")),
                      flush=True)
        with smtp.lock:
            new_messages = smtp.messages[seen_messages:]
            seen_messages = len(smtp.messages)
        for msg in new_messages:
            parsed = email.message_from_bytes(msg.data)
            subject = str(email.header.make_header(email.header.decode_header(parsed["Subject"] or "")))
            print("e-mail: to %s: %s" % (", ".join(msg.rcpts), subject), flush=True)
    orders.stop()
    smtp.stop()
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
