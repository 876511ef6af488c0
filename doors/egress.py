"""The one door for outbound HTTP to systems people configure: webhooks and chat robots,
Prometheus, registries, Jenkins.

A URL typed into a form must not become a way to reach what sits behind Slipway (the
database, the kube-apiserver, a cloud's metadata service at 169.254.169.254). So every
request through this door:

- resolves the host and refuses loopback, link-local, private, shared (CGNAT), multicast
  and reserved addresses — anything not globally routable — unless the host name or the
  address is listed in SLIPWAY_EGRESS_ALLOW;
- connects to the address that was checked (the pool is keyed by it, the Host header and
  TLS server name stay the name), so a second DNS answer cannot point elsewhere;
- follows no redirect (`request`); a library's session re-checks every hop;
- ends at one total deadline, however slowly the other side trickles (a watchdog shuts
  the socket down), and reads at most `max_bytes` of the body;
- says what failed without the URL, its credentials or the resolved address.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3 import exceptions as urllib3_errors
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from portal.core.errors import DoorError

# Connecting may take at most this much of the deadline.
CONNECT_SECONDS = 5.0
CHUNK = 64 * 1024


class EgressError(DoorError):
    """Base: the request did not get an answer Slipway can use; the message is safe to
    show (no URL, credential or resolved address)."""

    retryable = False


class EgressRefused(EgressError):
    """The destination is not one Slipway may call (not public, and not allowed)."""


class EgressUntrusted(EgressError):
    """TLS failed: the server's certificate is not trusted (trying again will not help)."""


class EgressFailed(EgressError):
    """The destination did not answer in time, refused the connection, or sent too much."""

    retryable = True


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    truncated: bool  # the body was longer than max_bytes; `body` holds the first bytes

    def json(self):
        return json.loads(self.body)


def safe_url(url: str) -> str:
    """The URL as it may be shown: no user, password or query (where tokens live)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _allow_entries() -> tuple[set[str], list[str], list[ipaddress._BaseNetwork]]:
    names, suffixes, networks = set(), [], []
    for entry in settings.SLIPWAY_EGRESS_ALLOW:
        entry = entry.strip().lower()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
            continue
        except ValueError:
            pass
        if entry.startswith("*."):
            suffixes.append(entry[1:])
        else:
            names.add(entry)
    return names, suffixes, networks


def _public(address: ipaddress._BaseAddress) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    return address.is_global and not address.is_multicast


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise EgressFailed(f"the host {host} does not resolve") from exc
    addresses = []
    for family, *_rest, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6) and sockaddr[0] not in addresses:
            addresses.append(sockaddr[0])
    # IPv4 first: local servers listen on 127.0.0.1 more often than on ::1.
    return sorted(addresses, key=lambda a: ":" in a)


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EgressRefused("only http:// and https:// addresses with a host are called")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise EgressRefused("the address has an invalid port") from exc
    return parts.hostname.lower().rstrip("."), port


def _named(host: str) -> bool:
    names, suffixes, _ = _allow_entries()
    return host in names or any(host.endswith(suffix) for suffix in suffixes)


def checked_address(url: str) -> str:
    """The address to connect to for `url`, after the checks; raises EgressRefused."""
    host, port = _host_port(url)
    named = _named(host)
    networks = _allow_entries()[2]
    addresses = _resolve(host, port)
    if not addresses:
        raise EgressFailed(f"the host {host} does not resolve")
    for text in addresses:
        address = ipaddress.ip_address(text.split("%")[0])
        if named or _public(address) or any(address in net for net in networks):
            continue
        raise EgressRefused(
            f"{host} is not a public address (loopback, private, link-local or reserved); "
            "Slipway calls only public addresses and those listed in SLIPWAY_EGRESS_ALLOW"
        )
    return addresses[0]


def check_destination(url: str) -> None:
    """For forms: refuse a URL Slipway would not call (raises EgressError). A host allowed
    by name is taken as it is (it may resolve only where the workers run)."""
    host, _port = _host_port(url)
    if not _named(host):
        checked_address(url)


# -- the transport ------------------------------------------------------------------


class _Watch:
    """The connection one request is using, so the deadline can cut it off."""

    def __init__(self) -> None:
        self.connection = None
        self.expired = False

    def abort(self) -> None:
        self.expired = True
        sock = getattr(self.connection, "sock", None)
        if sock is not None:
            # shutdown (not close) wakes a recv blocked in another thread.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


_current = threading.local()


class _WatchedPool:
    def _get_conn(self, timeout=None):  # urllib3's hook where a request gets its connection
        connection = super()._get_conn(timeout)
        watch = getattr(_current, "watch", None)
        if watch is not None:
            watch.connection = connection
        return connection


class _HTTPPool(_WatchedPool, HTTPConnectionPool):
    pass


class _HTTPSPool(_WatchedPool, HTTPSConnectionPool):
    pass


class GuardedAdapter(HTTPAdapter):
    """requests' transport with the door's rules (see the module's docstring)."""

    def __init__(self, *, deadline: float, max_bytes: int, partial: bool = False) -> None:
        self.deadline = deadline
        self.max_bytes = max_bytes
        # A live stream (server-sent events) never ends: read it until the deadline and
        # keep what came.
        self.partial = partial
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        name = host_params["host"]
        host_params["host"] = request.slipway_address
        if host_params["scheme"] == "https":
            # TLS still checks the certificate against the name, not the address.
            pool_kwargs["server_hostname"] = name
            pool_kwargs["assert_hostname"] = name
        return host_params, pool_kwargs

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        request.slipway_address = checked_address(request.url)
        parts = urlsplit(request.url)
        request.headers["Host"] = parts.netloc.rpartition("@")[2]
        watch = _Watch()
        timer = threading.Timer(self.deadline, watch.abort)
        timer.daemon = True
        started = time.monotonic()
        _current.watch = watch
        timer.start()
        try:
            response = super().send(
                request,
                stream=True,
                timeout=(min(CONNECT_SECONDS, self.deadline), self.deadline),
                verify=verify,
                cert=cert,
                proxies={},
            )
            if self.partial:
                body, truncated = _read_until_cut(response, self.max_bytes, watch)
            else:
                body, truncated = _read(response, self.max_bytes)
        except requests.exceptions.SSLError as exc:
            raise EgressUntrusted("TLS certificate not trusted") from exc
        except (requests.RequestException, urllib3_errors.HTTPError) as exc:
            # urllib3's own errors come from reading the body (requests only wraps those
            # of the headers): a connection broken mid-body, a read that waited too long.
            if watch.expired:
                raise EgressFailed(f"no complete answer within {self.deadline:g} s") from exc
            raise EgressFailed(_describe(exc)) from exc
        except OSError as exc:
            raise EgressFailed(_describe(exc)) from exc
        finally:
            timer.cancel()
            _current.watch = None
        if not self.partial and (watch.expired or time.monotonic() - started > self.deadline + 1):
            raise EgressFailed(f"no complete answer within {self.deadline:g} s")
        response._content = body
        response._content_consumed = True
        response.slipway_truncated = truncated
        return response


def _read(response: requests.Response, limit: int) -> tuple[bytes, bool]:
    chunks, size = [], 0
    try:
        for chunk in response.raw.stream(CHUNK, decode_content=True):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                return b"".join(chunks)[:limit], True
        return b"".join(chunks), False
    finally:
        response.raw.release_conn() if size <= limit else response.raw.close()


def _read_until_cut(response: requests.Response, limit: int, watch: _Watch) -> tuple[bytes, bool]:
    """What a live stream sent before the deadline cut it (read as it arrives)."""
    chunks, size = [], 0
    try:
        while size <= limit:
            try:
                chunk = response.raw.read1(1024)
            except Exception:
                if watch.expired:
                    break
                raise
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        response.raw.close()
    return b"".join(chunks)[:limit], size > limit


def _describe(exc: Exception) -> str:
    # requests' own messages quote the URL (a chat robot's key is in it): name the
    # failure, never the address.
    if isinstance(exc, requests.Timeout | urllib3_errors.TimeoutError):
        return "timed out"
    if isinstance(exc, urllib3_errors.ProtocolError):
        return "connection broken before the whole answer came"
    if isinstance(exc, requests.ConnectionError):
        return "could not connect"
    return type(exc).__name__


def session(*, deadline: float, max_bytes: int, partial: bool = False) -> requests.Session:
    """A requests session whose every request goes through the door: for libraries that
    bring their own HTTP calls (python-jenkins, python-dxf). Proxies from the environment
    are not used: a proxy would connect to what the door never checked. `partial`: for a
    live stream, the body is what came before the deadline."""
    made = requests.Session()
    made.trust_env = False
    adapter = GuardedAdapter(deadline=deadline, max_bytes=max_bytes, partial=partial)
    made.mount("http://", adapter)
    made.mount("https://", adapter)
    return made


def mount(target: requests.Session, *, deadline: float, max_bytes: int) -> requests.Session:
    """Put the door under an existing session (a library's own)."""
    target.trust_env = False
    adapter = GuardedAdapter(deadline=deadline, max_bytes=max_bytes)
    target.mount("http://", adapter)
    target.mount("https://", adapter)
    return target


def request(
    method: str,
    url: str,
    *,
    deadline: float,
    max_bytes: int,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    params: Iterable | dict | None = None,
    verify: bool | str = True,
) -> Answer:
    """One request, no redirect followed (a 3xx is the answer), through the door."""
    with session(deadline=deadline, max_bytes=max_bytes) as made:
        try:
            response = made.request(
                method,
                url,
                data=body,
                headers=headers,
                params=params,
                allow_redirects=False,
                verify=verify,
            )
        except EgressError:
            raise
        except requests.RequestException as exc:
            raise EgressFailed(_describe(exc)) from exc
    return Answer(
        status=response.status_code,
        headers=dict(response.headers),
        body=response.content,
        truncated=getattr(response, "slipway_truncated", False),
    )
