"""Where the playground may be served: loopback unless the operator explicitly allows more.

The playground places calls on the server's own agents for whoever opens the page, so
it must not appear on a reachable port by accident.
"""

from __future__ import annotations

import ipaddress

from byova_media.config import Config, ConfigError

__all__ = ["grpc_self_target", "http_bind_host"]

_LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost"})
_ANY = frozenset({"", "0.0.0.0", "::"})


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def http_bind_host(config: Config) -> str:
    """The HTTP host to bind; raise :class:`ConfigError` when the playground may not go there.

    With the playground on and no ``http_host`` set, the HTTP port binds to 127.0.0.1
    only (whatever ``host`` the gRPC port uses).
    """
    if not config.playground:
        return config.http_host or config.host
    if config.http_port is None:
        raise ConfigError("the playground is served on the HTTP port: set http_port (--http-port)")
    if config.tls_cert_file is not None:
        raise ConfigError(
            "the playground calls the server's own gRPC port in plaintext and cannot run "
            "with tls_cert_file set; use a server without TLS on 127.0.0.1 to try agents"
        )
    if config.http_host is None:
        return "127.0.0.1"
    if _is_loopback(config.http_host) or config.playground_allow_remote:
        return config.http_host
    raise ConfigError(
        f"refusing to serve the playground on http_host {config.http_host!r}: it is not a "
        "loopback address and anyone reaching it could call your agents and read their calls. "
        "Use 127.0.0.1 (and an SSH tunnel), or set playground_allow_remote = true"
    )


def grpc_self_target(config: Config, port: int) -> str:
    """``host:port`` at which this server's own gRPC port is reachable from itself."""
    host = config.host
    if host in _ANY or _is_loopback(host):
        return f"127.0.0.1:{port}"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
