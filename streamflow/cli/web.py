"""``streamflow web``: serve the dashboard (the extra ``streamflow[web]``).

Starlette and uvicorn are imported only when the command runs, so the rest of the CLI
works without the extra; without it the command says how to get it, in one line.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import sys
from typing import Any

from streamflow.cli.common import connect

DEFAULT_PORT = 8400
TOKEN_ENV = "STREAMFLOW_WEB_TOKEN"
"""The environment variable holding the token actions need (unset or empty: none)."""
_EXTRA = {"starlette", "uvicorn"}


def add_parser(sub: Any, connection: argparse.ArgumentParser) -> None:
    """Register ``streamflow web`` with the command's subparsers."""
    web = sub.add_parser(
        "web",
        help="serve the web dashboard (pip install 'streamflow[web]')",
        parents=[connection],
    )
    web.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    web.add_argument(
        "--port", type=_port, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any)"
    )
    web.add_argument(
        "--read-only", action="store_true", help="hide the actions (the API refuses them)"
    )
    web.set_defaults(func=cmd_web)


def cmd_web(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from streamflow.web.app import LOOPBACK_HOSTS, create_app
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] not in _EXTRA:
            raise
        print("streamflow web: needs the web extra: pip install 'streamflow[web]'", file=sys.stderr)
        return 2
    loopback = _is_loopback(args.host)
    dashboard = create_app(
        connect(args),
        read_only=args.read_only,
        token=os.environ.get(TOKEN_ENV) or None,
        allowed_hosts=LOOPBACK_HOSTS if loopback else None,
    )
    listening = _bound(args.host, args.port)
    host, port = listening.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"serving on http://{shown}:{port}", flush=True)
    server = uvicorn.Server(uvicorn.Config(dashboard, log_level="warning", access_log=False))
    server.run(sockets=[listening])
    return 0


def _port(text: str) -> int:
    """``--port``: a port number, 0 for any free one.

    Raises:
        argparse.ArgumentTypeError: not one.
    """
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"a port is a number from 0 to 65535 (got {text!r})")
    return int(text)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bound(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``, bound before the line that names it is
    printed (port 0: a free one, said in that line).

    Raises:
        OSError: the address is taken or not this machine's.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind((host, port))
        listening.listen(128)
    except OSError:
        listening.close()
        raise
    return listening
