"""``jmvae serve``: the explorer's app on werkzeug's threaded server until Ctrl-C or SIGTERM."""

from __future__ import annotations

import signal
import socket
import sys
import threading
from pathlib import Path

from jmvae.errors import JMVAEError
from jmvae.explorer.app import create_app
from jmvae.explorer.session import Explorer


def _url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("", "0.0.0.0") else host
    shown = "[::1]" if shown == "::" else (f"[{shown}]" if ":" in shown else shown)
    return f"http://{shown}:{port}/"


def serve(run_dir: str | Path, host: str = "127.0.0.1", port: int = 8000, device: str = "cpu", data_dir: str | Path | None = None) -> None:
    """Serve the explorer of ``run_dir`` until Ctrl-C; prints the URL. Port 0 picks a free port."""
    from werkzeug.serving import make_server, select_address_family

    if not 0 <= port <= 65535:
        raise JMVAEError(f"port {port}: a port is 0..65535 (0: any free port)", ("port",))
    app = create_app(run_dir, device=device, data_dir=data_dir)
    # Bind here, not in werkzeug (which prints and exits on a busy port), to report one line.
    try:
        listener = socket.create_server((host, port), family=select_address_family(host, port))
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise JMVAEError(f"cannot listen on {host}:{port}: {reason}; pick another port (0: any free port)", ("port",)) from None
    try:
        server = make_server(host, listener.getsockname()[1], app, threaded=True, fd=listener.fileno())
    finally:
        listener.close()  # the server holds its own duplicate of the socket
    explorer: Explorer = app.extensions["jmvae_explorer"]
    print(f"jmvae serve: exploring {explorer.run.display_name} on {explorer.data_name} at {_url(host, server.port)} (Ctrl-C to stop)", flush=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"jmvae serve: listening on {host}: anyone who can reach this machine can use the page", file=sys.stderr, flush=True)
    # Ctrl-C and SIGTERM stop the loop through shutdown() (from a helper thread: it waits for the
    # loop), installed explicitly so that a SIGINT disposition inherited as "ignored" (as from
    # some launchers and test runners) cannot leave the server deaf to Ctrl-C.
    def stop(signum: int, frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.server_close()
    print("jmvae serve: stopped", flush=True)
