"""Tiny TCP+UDP echo server run inside an endpoint namespace by the functional tests.

    python echo_server.py NAME PORT SECONDS

UDP: answers every datagram with ``NAME:`` + the datagram. TCP: for each connection, sends
``NAME:`` then echoes everything until the client closes. Exits after SECONDS (bounded).
"""

from __future__ import annotations

import select
import socket
import sys
import threading
import time


def main() -> None:
    name, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    deadline = time.monotonic() + seconds
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("0.0.0.0", port))
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind(("0.0.0.0", port))
    t.listen(8)
    print("ready", flush=True)

    def serve(c: socket.socket) -> None:
        c.settimeout(10)
        try:
            c.sendall(f"{name}:".encode())
            while data := c.recv(65536):
                c.sendall(data)
        except OSError:
            pass
        finally:
            c.close()

    while time.monotonic() < deadline:
        r, _, _ = select.select([u, t], [], [], 0.2)
        if u in r:
            data, addr = u.recvfrom(65536)
            u.sendto(f"{name}:".encode() + data, addr)
        if t in r:
            c, _ = t.accept()
            threading.Thread(target=serve, args=(c,), daemon=True).start()


if __name__ == "__main__":
    main()
