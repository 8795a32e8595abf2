"""Client side of echo_server.py, run inside an endpoint namespace.

    python echo_client.py udp|tcp IP PORT NBYTES

Prints the server's name (the part before ':') and exits 0 when the echo came back intact.
"""

from __future__ import annotations

import os
import socket
import sys


def main() -> int:
    proto, ip, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    payload = os.urandom(n)
    if proto == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(2)
        for _ in range(3):
            s.sendto(payload, (ip, port))
            try:
                data, _ = s.recvfrom(65536)
                break
            except TimeoutError:
                continue
        else:
            print("timeout", file=sys.stderr)
            return 1
    else:
        s = socket.create_connection((ip, port), timeout=5)
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while c := s.recv(65536):
            chunks.append(c)
        data = b"".join(chunks)
    name, _, echoed = data.partition(b":")
    print(name.decode())
    return 0 if echoed == payload else 2


if __name__ == "__main__":
    sys.exit(main())
