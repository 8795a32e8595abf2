"""The SPDY/3.1 session in-process: frames a client would send, and what the server answers.

The client side is built from the same framing helpers but its own zlib streams, so a wrong
dictionary, a header block not sync-flushed, or a reply sent after data would fail here (the
kubectl tests in ``test_streams.py`` check the same against the real client).
"""

from __future__ import annotations

import asyncio
import struct

from ctl.apiserver.streaming import spdy


def _frames(buf: bytes) -> list[tuple[bool, int, int, bytes]]:
    """(control?, type or stream id, flags, payload) of every frame in ``buf``."""
    out = []
    while buf:
        word, fl = struct.unpack_from(">II", buf)
        n = fl & 0xFFFFFF
        payload, buf = buf[8 : 8 + n], buf[8 + n :]
        ctrl = bool(word & 0x80000000)
        out.append((ctrl, word & 0xFFFF if ctrl else word & 0x7FFFFFFF, fl >> 24, payload))
    return out


def test_session_replies_relays_pings_and_ends() -> None:
    async def go() -> None:
        sent: list[bytes] = []

        async def send(b: bytes) -> None:
            sent.append(b)

        s = spdy.SpdySession(send)
        client = spdy.HeaderCodec()
        hdr = client.encode([("streamtype", "stdout"), ("port", "80")])
        syn = spdy.control_frame(spdy.SYN_STREAM, 0, struct.pack(">IIH", 1, 0, 0) + hdr)
        # one frame split over two reads, then a second stream, data with FIN, and a ping
        s.feed(syn[:5])
        s.feed(syn[5:])
        hdr2 = client.encode([("streamtype", "stdin")])
        s.feed(spdy.control_frame(spdy.SYN_STREAM, 0, struct.pack(">IIH", 3, 0, 0) + hdr2))
        s.feed(spdy.data_frame(3, spdy.FLAG_FIN, b"hello"))
        s.feed(spdy.control_frame(spdy.PING, 0, struct.pack(">I", 7)))
        a = await s.accept()
        b = await s.accept()
        assert a is not None and b is not None
        assert (a.id, a.header("streamtype"), a.header("port"), b.header("streamtype")) == (
            1,
            "stdout",
            "80",
            "stdin",
        )
        assert await b.read() == b"hello" and await b.read() == b""
        await a.write(b"x" * (spdy.MAX_DATA + 10))
        await a.close()
        await s.flush()
        frames = _frames(b"".join(sent))
        replies = [f for f in frames if f[0] and f[1] == spdy.SYN_REPLY]
        inflate = spdy.HeaderCodec()
        assert [struct.unpack_from(">I", r[3])[0] for r in replies] == [1, 3]
        assert all(inflate.decode(r[3][4:]) == {} for r in replies)
        assert (True, spdy.PING, 0, struct.pack(">I", 7)) in frames
        data = [f for f in frames if not f[0] and f[1] == 1]
        assert [len(f[3]) for f in data] == [spdy.MAX_DATA, 10, 0] and data[-1][2] == spdy.FLAG_FIN
        # the reply precedes the stream's data
        assert frames.index(replies[0]) < frames.index(data[0])
        # data for a stream that does not exist is refused with RST_STREAM; then the peer leaves
        sent.clear()
        s.feed(spdy.data_frame(9, 0, b"?"))
        await s.flush()
        assert any(f[0] and f[1] == spdy.RST_STREAM for f in _frames(b"".join(sent)))
        s.feed_eof()
        assert await s.accept() is None and await a.read() == b""
        await s.close()

    asyncio.run(go())


def test_wrong_version_or_garbage_ends_the_session() -> None:
    async def go() -> None:
        async def send(b: bytes) -> None:
            pass

        s = spdy.SpdySession(send)
        s.feed(struct.pack(">HHI", 0x8000 | 2, spdy.SYN_STREAM, 0) + b"")
        assert s.closed and s.error and "version 2" in s.error
        assert await s.accept() is None
        await s.close()

    asyncio.run(go())
