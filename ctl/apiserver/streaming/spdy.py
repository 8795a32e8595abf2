"""SPDY/3.1 as the Kubernetes streaming clients use it: the server side of one session.

kubectl (``KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false``, and every client-go before 1.30) upgrades
``pods/NAME/exec|attach|portforward`` to ``SPDY/3.1`` and then opens one SPDY stream per standard
stream (or per port-forward data/error pair), naming each in a ``streamtype`` header. kubectl
1.31+ tunnels the same SPDY bytes through a WebSocket for port-forward. This module is the framing
(draft 3 of the SPDY spec, section 2) and a minimal session on top of it:

* frames: 8-byte headers, control frames (``C`` bit, version 3, type, flags, 24-bit length) and
  data frames (31-bit stream id, ``FIN`` flag); header blocks (32-bit count, then 32-bit
  length-prefixed names and values, lower-case names) compressed with one zlib stream per
  direction whose preset dictionary is :data:`DICTIONARY` (each block sync-flushed);
* the session accepts the peer's ``SYN_STREAM`` frames and answers each with a ``SYN_REPLY`` at
  once (the Go client waits for it before it writes), echoes ``PING``, honours ``RST_STREAM``,
  ``GOAWAY`` and ``FIN``, and sends ``GOAWAY`` when closed. The Go implementation (spdystream)
  ignores window updates and sends none, so neither does this one: flow control is the
  transport's, with bounded buffers both ways (:attr:`SpdySession.pause_reading` is asked to
  stop the transport while too much input waits to be read).

It knows nothing of exec or port-forward; :mod:`ctl.apiserver.streaming.remotecommand` and
:mod:`ctl.apiserver.streaming.portforward` give the streams their meaning.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import struct
import zlib
from collections.abc import Awaitable, Callable

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN, FLAG_UNIDIRECTIONAL = 0x01, 0x02
RST_PROTOCOL_ERROR, RST_INVALID_STREAM, RST_CANCEL = 1, 2, 5
MAX_DATA = 32 * 1024  # bytes per data frame we send
HIGH_WATER, LOW_WATER = 1 << 20, 256 * 1024

# The header-compression dictionary of SPDY/3 (spec draft 3, section 2.6.10.1): length-prefixed
# words, then a run of status codes, reason phrases, dates and content types.
_WORDS = (
    "options head post put delete trace accept accept-charset accept-encoding accept-language "
    "accept-ranges age allow authorization cache-control connection content-base content-encoding "
    "content-language content-length content-location content-md5 content-range content-type date "
    "etag expect expires from host if-match if-modified-since if-none-match if-range "
    "if-unmodified-since last-modified location max-forwards pragma proxy-authenticate "
    "proxy-authorization range referer retry-after server te trailer transfer-encoding upgrade "
    "user-agent vary via warning www-authenticate method get status"
).split() + ["200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin"]
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
    "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
    "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _WORDS) + _TAIL.encode()

_U32 = struct.Struct(">I")


class SpdyError(Exception):
    """The peer broke the protocol; the session cannot continue."""


def control_frame(typ: int, flags: int, payload: bytes) -> bytes:
    return struct.pack(">HHI", 0x8000 | VERSION, typ, (flags << 24) | len(payload)) + payload


def data_frame(stream_id: int, flags: int, data: bytes) -> bytes:
    return struct.pack(">II", stream_id & 0x7FFFFFFF, (flags << 24) | len(data)) + data


class HeaderCodec:
    """The two zlib streams of one session's header blocks."""

    def __init__(self) -> None:
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._deflate = zlib.compressobj(9, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY, DICTIONARY)

    def encode(self, headers: list[tuple[str, str]]) -> bytes:
        raw = [_U32.pack(len(headers))]
        for k, v in headers:
            kb, vb = k.lower().encode(), v.encode()
            raw += [_U32.pack(len(kb)), kb, _U32.pack(len(vb)), vb]
        return self._deflate.compress(b"".join(raw)) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    def decode(self, block: bytes) -> dict[str, list[str]]:
        try:
            raw = self._inflate.decompress(block)
        except zlib.error as e:
            raise SpdyError(f"bad header block: {e}") from None
        out: dict[str, list[str]] = {}
        try:
            (n,), pos = _U32.unpack_from(raw, 0), 4
            for _ in range(n):
                (ln,) = _U32.unpack_from(raw, pos)
                name = raw[pos + 4 : pos + 4 + ln].decode()
                pos += 4 + ln
                (lv,) = _U32.unpack_from(raw, pos)
                value = raw[pos + 4 : pos + 4 + lv].decode()
                pos += 4 + lv
                out.setdefault(name.lower(), []).extend(value.split("\x00"))
        except (struct.error, UnicodeDecodeError) as e:
            raise SpdyError(f"bad header block: {e}") from None
        return out


class SpdyStream:
    """One stream the peer opened: its headers, what it sends us, and our side of it."""

    def __init__(
        self, session: SpdySession, stream_id: int, headers: dict[str, list[str]], fin: bool
    ) -> None:
        self.session = session
        self.id = stream_id
        self.headers = headers
        self._inbox: collections.deque[bytes] = collections.deque()
        self._ready = asyncio.Event()
        self.remote_closed = fin
        self.local_closed = False
        self.was_reset = False
        if fin:
            self._ready.set()

    def header(self, name: str) -> str:
        vals = self.headers.get(name.lower()) or [""]
        return vals[0]

    def _deliver(self, data: bytes) -> None:
        if data and not self.remote_closed:
            self._inbox.append(data)
            self.session._inbound(len(data))
        self._ready.set()

    def _finish(self) -> None:
        self.remote_closed = True
        self._ready.set()

    async def read(self) -> bytes:
        """The next chunk the peer sent; ``b""`` once it closed (FIN) or reset the stream."""
        while not self._inbox:
            if self.remote_closed or self.was_reset or self.session.closed:
                return b""
            self._ready.clear()
            await self._ready.wait()
        data = self._inbox.popleft()
        self.session._consumed(len(data))
        return data

    async def write(self, data: bytes) -> None:
        if self.local_closed or self.was_reset or self.session.closed:
            return
        for i in range(0, len(data), MAX_DATA):
            await self.session._send_data(data_frame(self.id, 0, data[i : i + MAX_DATA]))

    async def close(self) -> None:
        """Half-close our side (a data frame with FIN)."""
        if self.local_closed or self.was_reset or self.session.closed:
            return
        self.local_closed = True
        await self.session._send_data(data_frame(self.id, FLAG_FIN, b""))

    def reset(self, status: int = RST_CANCEL) -> None:
        if self.was_reset or self.session.closed:
            return
        self.was_reset = True
        self.session._queue(control_frame(RST_STREAM, 0, struct.pack(">II", self.id, status)))
        self._ready.set()


class SpdySession:
    """The server side of one SPDY/3.1 session: feed it the peer's bytes, accept its streams.

    ``send`` writes bytes to the peer (awaiting its backpressure); ``pause_reading(True|False)``,
    when given, stops and resumes the transport while more than a megabyte of input is unread.
    """

    def __init__(
        self,
        send: Callable[[bytes], Awaitable[None]],
        pause_reading: Callable[[bool], None] | None = None,
    ) -> None:
        self._send = send
        self._pause_reading = pause_reading
        self._buf = bytearray()
        self._codec = HeaderCodec()
        self.streams: dict[int, SpdyStream] = {}
        self._accepted: asyncio.Queue[SpdyStream | None] = asyncio.Queue()
        self._out: collections.deque[bytes] = collections.deque()
        self._out_bytes = 0
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._in_bytes = 0
        self._paused = False
        self.closed = False
        self.going_away = False
        self.last_stream_id = 0
        self.error: str | None = None
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())

    # ------------------------------------------------------------------ input
    def feed(self, data: bytes) -> None:
        if self.closed:
            return
        self._buf += data
        try:
            while len(self._buf) >= 8:
                word, flags_len = struct.unpack_from(">II", self._buf)
                length = flags_len & 0xFFFFFF
                if len(self._buf) < 8 + length:
                    break
                payload = bytes(self._buf[8 : 8 + length])
                del self._buf[: 8 + length]
                if word & 0x80000000:
                    version = (word >> 16) & 0x7FFF
                    if version != VERSION:
                        raise SpdyError(f"unsupported SPDY version {version}")
                    self._control(word & 0xFFFF, flags_len >> 24, payload)
                else:
                    self._data(word & 0x7FFFFFFF, flags_len >> 24, payload)
        except SpdyError as e:
            self.error = str(e)
            self.feed_eof()

    def feed_eof(self) -> None:
        """The peer's bytes ended: every stream ends, :meth:`accept` returns None."""
        if self.closed:
            return
        self.closed = True
        for s in self.streams.values():
            s._finish()
        self._accepted.put_nowait(None)
        self._wake.set()
        self._room.set()

    def _control(self, typ: int, flags: int, p: bytes) -> None:
        if typ == SYN_STREAM:
            if len(p) < 10:
                raise SpdyError("short SYN_STREAM")
            sid = _U32.unpack_from(p)[0] & 0x7FFFFFFF
            headers = self._codec.decode(p[10:])
            if sid == 0 or sid % 2 == 0 or sid <= self.last_stream_id or self.going_away:
                self._queue(control_frame(RST_STREAM, 0, struct.pack(">II", sid, RST_PROTOCOL_ERROR)))
                return
            self.last_stream_id = sid
            s = SpdyStream(self, sid, headers, bool(flags & FLAG_FIN))
            if flags & FLAG_UNIDIRECTIONAL:
                s.local_closed = True
            self.streams[sid] = s
            self._queue(control_frame(SYN_REPLY, 0, _U32.pack(sid) + self._codec.encode([])))
            self._accepted.put_nowait(s)
        elif typ in (SYN_REPLY, HEADERS):
            if len(p) < 4:
                raise SpdyError("short header frame")
            self._codec.decode(p[4:])  # keeps the zlib stream in step; nothing to do with it
        elif typ == RST_STREAM:
            if len(p) >= 8:
                st = self.streams.get(_U32.unpack_from(p)[0] & 0x7FFFFFFF)
                if st is not None:
                    st.was_reset = True
                    st._finish()
        elif typ == PING:
            self._queue(control_frame(PING, 0, p[:4]))
        elif typ == GOAWAY:
            self.going_away = True
        # SETTINGS, WINDOW_UPDATE and unknown types are ignored (as spdystream does)

    def _data(self, sid: int, flags: int, data: bytes) -> None:
        st = self.streams.get(sid)
        if st is None:
            self._queue(control_frame(RST_STREAM, 0, struct.pack(">II", sid, RST_INVALID_STREAM)))
            return
        if data:
            st._deliver(data)
        if flags & FLAG_FIN:
            st._finish()

    def _inbound(self, n: int) -> None:
        self._in_bytes += n
        if self._in_bytes > HIGH_WATER and not self._paused and self._pause_reading is not None:
            self._paused = True
            self._pause_reading(True)

    def _consumed(self, n: int) -> None:
        self._in_bytes -= n
        if self._paused and self._in_bytes < LOW_WATER and self._pause_reading is not None:
            self._paused = False
            self._pause_reading(False)

    async def accept(self) -> SpdyStream | None:
        """The next stream the peer opens (already replied to); None when the session ends."""
        if self.closed and self._accepted.empty():
            return None
        return await self._accepted.get()

    # ------------------------------------------------------------------ output
    def _queue(self, frame: bytes) -> None:
        self._out.append(frame)
        self._out_bytes += len(frame)
        self._wake.set()
        if self._out_bytes > HIGH_WATER:
            self._room.clear()

    async def _send_data(self, frame: bytes) -> None:
        while self._out_bytes > HIGH_WATER and not self.closed:
            await self._room.wait()
        if not self.closed:
            self._queue(frame)

    async def _write_loop(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                if not self._out:
                    if self.closed:
                        return
                    continue
                chunk = b"".join(self._out)
                self._out.clear()
                await self._send(chunk)
                self._out_bytes -= len(chunk)
                if self._out_bytes <= LOW_WATER:
                    self._room.set()
        except (ConnectionError, RuntimeError, OSError) as e:
            self.error = self.error or f"write failed: {e}"
            self.feed_eof()

    async def flush(self, timeout: float = 5.0) -> None:
        """Wait until everything queued so far has been handed to the transport."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while (self._out or self._out_bytes > 0) and not self._writer.done() and loop.time() < end:
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        """Send GOAWAY, flush what is queued and stop writing."""
        if not self.closed:
            self._queue(control_frame(GOAWAY, 0, struct.pack(">II", self.last_stream_id, 0)))
            await self.flush()
        self.feed_eof()
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer
