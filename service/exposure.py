"""Secure by default: a non-loopback bind needs TLS and authentication, or an explicit opt-out."""

import ipaddress
import socket

from service.settings import Settings


class InsecureExposure(ValueError):
    """Serving would expose scores and writes to the network without TLS or authentication."""


def is_loopback(host: str) -> bool:
    """True when every address `host` names is a loopback address (127.0.0.0/8, ::1)."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(addresses) and all(ipaddress.ip_address(str(a).split("%")[0]).is_loopback
                                   for a in addresses)


def ensure_safe_exposure(settings: Settings) -> None:
    """Raises InsecureExposure, one readable line, when `settings` would serve a non-loopback
    address without both TLS and authentication and EFFORT_ALLOW_INSECURE is not true."""
    if settings.allow_insecure or is_loopback(settings.grpc_host):
        return
    missing = []
    if not (settings.tls_cert_file and settings.tls_key_file):
        missing.append("TLS (EFFORT_TLS_CERT_FILE and EFFORT_TLS_KEY_FILE)")
    if not (settings.auth_tokens_file or settings.auth_jwks_file):
        missing.append("authentication (EFFORT_AUTH_TOKENS_FILE or EFFORT_AUTH_JWKS_FILE)")
    if missing:
        raise InsecureExposure(
            f"refusing to serve {settings.grpc_host} without {' and '.join(missing)}: set them, "
            "bind 127.0.0.1 (EFFORT_GRPC_HOST), or set EFFORT_ALLOW_INSECURE=true")
