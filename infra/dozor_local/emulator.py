"""The AWS emulator in its own process: moto's threaded server with Dozor's moto quirks installed.

    python -m dozor_local.emulator 127.0.0.1 0     # prints "ready http://127.0.0.1:<port>"

Why a process of its own: moto does all of its work in Python under one GIL. Sharing that GIL
with the API gateway, the pollers and the demo's clients made every request wait for the
others; in its own process the emulator gets a core to itself. It exits when its stdin closes,
so it never outlives the stack that started it.
"""

from __future__ import annotations

import logging
import sys
import threading

from dozor_local import moto_quirks


def serve(host: str, port: int) -> None:
    """Run the emulator until stdin closes (the parent stopped or died)."""
    from moto.server import ThreadedMotoServer  # noqa: PLC0415 - heavy; only in the emulator process

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log per request
    moto_quirks.install()
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    bound_host, bound_port = server.get_host_and_port()
    print(f"ready http://{bound_host}:{bound_port}", flush=True)
    done = threading.Event()

    def watch_parent() -> None:
        sys.stdin.read()  # returns at EOF: the parent closed the pipe or exited
        done.set()

    threading.Thread(target=watch_parent, daemon=True).start()
    done.wait()
    server.stop()


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
