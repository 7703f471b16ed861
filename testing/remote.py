"""Remote storage for tests, real servers on loopback: an S3 endpoint (moto's server mode, in a
process of its own), a Yandex Disk REST API, an endpoint that accepts and never answers, and a
fake S3 endpoint that misbehaves (a huge body, a slow drip, a non-S3 answer)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import boto3
import httpx

from testing.servers import free_port, wait_for_http

S3_ALLOW_ALL = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
)


class S3Server:
    """moto's S3 over HTTP, with IAM authentication enforced: only the key pair it issued
    (access_key, secret_key) is accepted; anything else is refused as S3 refuses it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.endpoint}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_http(self.url + "/moto-api/")
            # Set up while moto still lets anyone in, then turn authentication on.
            iam = self._client("iam", "setup", "setup")
            iam.create_user(UserName="arv")
            key = iam.create_access_key(UserName="arv")["AccessKey"]
            iam.put_user_policy(UserName="arv", PolicyName="s3", PolicyDocument=S3_ALLOW_ALL)
            self.access_key, self.secret_key = key["AccessKeyId"], key["SecretAccessKey"]
            httpx.post(self.url + "/moto-api/reset-auth", content=b"0").raise_for_status()
            self.s3 = self._client("s3", self.access_key, self.secret_key)
        except Exception:
            self.stop()
            raise

    def _client(self, service: str, access_key: str, secret_key: str):
        return boto3.client(
            service,
            endpoint_url=self.url,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name="us-east-1",
        )

    def credentials(self, bucket: str, **changes) -> dict:
        """A minio connection's credentials for this server and bucket."""
        return {
            "endpoint": self.endpoint,
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "bucket": bucket,
            "secure": False,
            **changes,
        }

    def create_bucket(self, name: str) -> str:
        self.s3.create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> list[str]:
        return [item["Key"] for item in self.s3.list_objects_v2(Bucket=bucket).get("Contents", [])]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


class YandexDiskServer:
    """The Yandex Disk REST API endpoints a check calls (GET /v1/disk/, GET /v1/disk/resources),
    over HTTP in a thread: one OAuth token is accepted; folders and files are what the test says."""

    def __init__(self, token: str = "yandex-token-for-tests") -> None:
        self.token = token
        self.total_space, self.used_space = 10 * 2**30, 2**30
        self.resources: dict[str, str] = {"/": "dir"}  # path -> "dir" or "file"
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                url = urlsplit(self.path)
                if self.headers.get("Authorization") != f"OAuth {server.token}":
                    self.answer(401, {"error": "UnauthorizedError", "description": "Unauthorized"})
                elif url.path == "/v1/disk/":
                    self.answer(200, {"total_space": server.total_space, "used_space": server.used_space})
                elif url.path == "/v1/disk/resources":
                    path = parse_qs(url.query).get("path", [""])[0].removeprefix("disk:")
                    kind = server.resources.get(path)
                    if kind is None:
                        self.answer(404, {"error": "DiskNotFoundError", "description": "Resource not found."})
                    else:
                        self.answer(200, {"path": f"disk:{path}", "type": kind, "name": path.rsplit("/", 1)[-1]})
                else:
                    self.answer(404, {"error": "NotFound"})

            def answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="yandex-disk", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class LoopbackListener:
    """A TCP port on loopback that hands each connection to `connected_to` (on its own thread).
    Subclasses set their own state first, then call this __init__ (it starts accepting)."""

    def __init__(self, name: str) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.endpoint = f"127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, name=name, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connected_to(conn)

    def connected_to(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self.sock.close()


class SilentEndpoint(LoopbackListener):
    """A TCP port that accepts connections and never answers (a hung server)."""

    def __init__(self) -> None:
        self.accepted: list[socket.socket] = []
        self.connected = threading.Event()  # set once a client has connected
        super().__init__("silent-endpoint")

    def connected_to(self, conn: socket.socket) -> None:
        self.accepted.append(conn)
        self.connected.set()

    def stop(self) -> None:
        super().stop()
        for conn in self.accepted:
            conn.close()


class FakeS3Endpoint(LoopbackListener):
    """An HTTP endpoint on loopback that looks like S3 to a first glance (its answers carry an
    S3 request id) and then misbehaves as `put` says, for the probe PUT of a MinIO check
    (HEAD answers 200; give the check a region, so it asks for no bucket location):

    - "huge": 200 and a body of `huge_bytes` (sent until the client hangs up);
    - "drip": the status line and headers one byte every `drip_seconds`, never finished;
    - "not_s3": a plain web server's 404 page, no S3 request id (for every request);
    - "redirect": 301 to elsewhere (every request); "hangup": close without an answer (every request).

    It counts connections, bytes sent, and sets `closed` when a client has closed its connection."""

    def __init__(self, put: str, huge_bytes: int = 400 * 2**20, drip_seconds: float = 0.1) -> None:
        self.put, self.huge_bytes, self.drip_seconds = put, huge_bytes, drip_seconds
        self.connections = 0
        self.requests: list[str] = []
        self.hosts: list[str] = []  # each request's Host header
        self.bytes_sent = 0
        self.closed = threading.Event()
        self._lock = threading.Lock()
        super().__init__("fake-s3")

    def credentials(self, **changes) -> dict:
        return {
            "endpoint": self.endpoint,
            "access_key": "fake-access",
            "secret_key": "fake-secret-S3CR3T",
            "bucket": "arv-fake",
            "secure": False,
            "region": "us-east-1",
            **changes,
        }

    def connected_to(self, conn: socket.socket) -> None:
        with self._lock:
            self.connections += 1
        threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _send(self, conn: socket.socket, data: bytes) -> None:
        conn.sendall(data)
        with self._lock:
            self.bytes_sent += len(data)

    def _serve(self, conn: socket.socket) -> None:
        try:
            with conn, conn.makefile("rb") as reader:
                while True:
                    line = reader.readline(65536)
                    if not line:
                        break
                    method = line.split(b" ", 1)[0].decode()
                    self.requests.append(method)
                    length = 0
                    while (header := reader.readline(65536)) not in (b"\r\n", b"\n", b""):
                        name, _, value = header.decode("latin-1").partition(":")
                        if name.strip().lower() == "content-length":
                            length = int(value)
                        elif name.strip().lower() == "host":
                            self.hosts.append(value.strip())
                    reader.read(length)
                    if not self._answer(conn, method):
                        break
        except OSError:
            pass
        finally:
            self.closed.set()

    def _answer(self, conn: socket.socket, method: str) -> bool:
        """Answer one request; False: the connection is done."""
        s3 = b"x-amz-request-id: FAKE0001\r\n"
        if self.put == "not_s3":
            self._send(conn, b"HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: 9\r\n\r\nNot found")
            return True
        if self.put == "redirect":
            self._send(conn, b"HTTP/1.1 301 Moved\r\nLocation: http://127.0.0.1:1/\r\nContent-Length: 0\r\n\r\n")
            return True
        if self.put == "hangup":
            return False
        if method == "HEAD":  # one request per connection: the next one connects again
            self._send(conn, b"HTTP/1.1 200 OK\r\n" + s3 + b"Content-Length: 0\r\nConnection: close\r\n\r\n")
            return False
        if method == "DELETE":
            self._send(conn, b"HTTP/1.1 204 No Content\r\n" + s3 + b"\r\n")
            return True
        if self.put == "drip":
            for byte in b"HTTP/1.1 200 OK\r\n" + s3 + b"X-Drip: " + b"a" * 100_000:
                self._send(conn, bytes([byte]))
                time.sleep(self.drip_seconds)
            return False
        # huge: no Content-Length, so only the cap stops a reader
        self._send(conn, b"HTTP/1.1 200 OK\r\n" + s3 + b"Connection: close\r\n\r\n")
        chunk = b"x" * 65536
        for _ in range(self.huge_bytes // len(chunk)):
            self._send(conn, chunk)
        return False
