"""A local stand-in for Twilio's REST API: a real HTTP server on 127.0.0.1, port 0.

It records every request exactly as received (method, path, headers, form fields) and answers like the
2010-04-01 Messages and Calls resources (201 + JSON resource, or Twilio's JSON error shape), and serves media
the way Twilio does (a redirect from the authenticated media URL to a storage URL without credentials).
The real ``twilio.rest.Client`` is pointed at it through TWILIO_API_BASE.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

_ids = itertools.count(1)


def fake_sid(prefix: str) -> str:
    return f"{prefix}{next(_ids):032x}"


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    form: dict[str, list[str]]

    def field(self, name: str) -> str | None:
        values = self.form.get(name)
        return values[0] if values else None


@dataclass
class Scripted:
    status: int
    body: dict[str, Any]


@dataclass
class Media:
    content_type: str
    data: bytes


@dataclass
class TwilioStandIn:
    account_sid: str
    auth_token: str
    requests: list[RecordedRequest] = field(default_factory=list)
    scripted: list[Scripted] = field(default_factory=list)
    media: dict[str, Media] = field(default_factory=dict)
    server: ThreadingHTTPServer | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def fail_next(self, status: int, code: int, message: str) -> None:
        """Answer the next API call with Twilio's error body instead of success."""
        self.scripted.append(
            Scripted(
                status,
                {
                    "code": code,
                    "message": message,
                    "more_info": f"https://www.twilio.com/docs/errors/{code}",
                    "status": status,
                },
            )
        )

    def add_media(self, path: str, content_type: str, data: bytes) -> str:
        """Serve ``data`` at ``path`` (/2010-04-01/Accounts/AC…/Messages/MM…/Media/ME…); return Twilio's URL for it."""
        self.media[path] = Media(content_type, data)
        return f"https://api.twilio.com{path}"

    def api_requests(self, resource: str) -> list[RecordedRequest]:
        with self.lock:
            return [r for r in self.requests if r.path.endswith(f"/{resource}.json")]

    def start(self) -> TwilioStandIn:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _record(self) -> RecordedRequest:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                form = parse_qs(body.decode("utf-8"), keep_blank_values=True) if body else {}
                recorded = RecordedRequest(
                    self.command, parts.path, parse_qs(parts.query), dict(self.headers.items()), body, form
                )
                with standin.lock:
                    standin.requests.append(recorded)
                return recorded

            def _send(
                self,
                status: int,
                payload: bytes,
                content_type: str = "application/json",
                extra: dict[str, str] | None = None,
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                for key, value in (extra or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

            def _json(self, status: int, body: dict[str, Any]) -> None:
                self._send(status, json.dumps(body).encode())

            def _authorised(self) -> bool:
                expected = "Basic " + base64.b64encode(f"{standin.account_sid}:{standin.auth_token}".encode()).decode()
                return self.headers.get("Authorization") == expected

            def do_GET(self) -> None:
                recorded = self._record()
                if recorded.path.startswith("/storage/"):
                    media = standin.media.get(recorded.path.removeprefix("/storage"))
                    if media is None or "Authorization" in self.headers:  # storage never sees account credentials
                        self._send(404 if media is None else 400, b"")
                        return
                    self._send(200, media.data, media.content_type)
                    return
                if not self._authorised():
                    self._json(401, {"code": 20003, "message": "Authenticate", "status": 401})
                    return
                if recorded.path in standin.media:
                    # Another host name, as Twilio's storage is: a client must drop the credentials on the way.
                    storage = standin.base_url.replace("127.0.0.1", "localhost")
                    self._send(307, b"", extra={"Location": f"{storage}/storage{recorded.path}"})
                    return
                self._json(404, {"code": 20404, "message": "The requested resource was not found", "status": 404})

            def do_POST(self) -> None:
                recorded = self._record()
                if not self._authorised():
                    self._json(401, {"code": 20003, "message": "Authenticate", "status": 401})
                    return
                with standin.lock:
                    scripted = standin.scripted.pop(0) if standin.scripted else None
                if scripted is not None:
                    self._json(scripted.status, scripted.body)
                    return
                match = re.fullmatch(r"/2010-04-01/Accounts/(AC\w+)/(Messages|Calls)\.json", recorded.path)
                if not match or match.group(1) != standin.account_sid:
                    self._json(404, {"code": 20404, "message": "The requested resource was not found", "status": 404})
                    return
                fields = {key: values[0] for key, values in recorded.form.items()}
                if match.group(2) == "Messages":
                    sid = fake_sid("SM")
                    body = {
                        "sid": sid,
                        "account_sid": standin.account_sid,
                        "to": fields.get("To"),
                        "from": fields.get("From"),
                        "messaging_service_sid": fields.get("MessagingServiceSid"),
                        "body": fields.get("Body"),
                        "status": "queued",
                        "num_segments": "1",
                        "num_media": "0",
                        "direction": "outbound-api",
                        "api_version": "2010-04-01",
                        "price": None,
                        "error_code": None,
                        "error_message": None,
                        "uri": f"/2010-04-01/Accounts/{standin.account_sid}/Messages/{sid}.json",
                        "date_created": "Mon, 01 Jan 2024 12:00:00 +0000",
                        "date_updated": "Mon, 01 Jan 2024 12:00:00 +0000",
                        "date_sent": None,
                        "subresource_uris": {
                            "media": f"/2010-04-01/Accounts/{standin.account_sid}/Messages/{sid}/Media.json"
                        },
                    }
                else:
                    sid = fake_sid("CA")
                    body = {
                        "sid": sid,
                        "account_sid": standin.account_sid,
                        "to": fields.get("To"),
                        "from": fields.get("From"),
                        "status": "queued",
                        "direction": "outbound-api",
                        "api_version": "2010-04-01",
                        "uri": f"/2010-04-01/Accounts/{standin.account_sid}/Calls/{sid}.json",
                        "date_created": "Mon, 01 Jan 2024 12:00:00 +0000",
                        "date_updated": "Mon, 01 Jan 2024 12:00:00 +0000",
                    }
                self._json(201, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), name="twilio-standin", daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
