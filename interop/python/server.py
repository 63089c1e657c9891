"""A scriptable WebSocket server on Python's `websockets`, for resocket's
interop suite. Written for the asyncio ("legacy") API of websockets 10.x,
the version in Debian bookworm's python3-websockets; run it with Debian's
/usr/bin/python3.

Usage: /usr/bin/python3 server.py [port]   (0 or none: any free port)

It listens on 127.0.0.1 and prints the port it got as the first line on
stdout; logs go to stderr. Each connection does what its URL asks, the
same contract as interop/node/server.js (see interop/README.md):

  /echo                      echo every message, same type
  /close?code=N&reason=R     close with code N and reason R at once;
                             no code: a close frame without one (1005)
  /drop                      at the first message, end TCP (FIN) without a
                             close frame
  /reset                     at the first message, reset TCP (RST) without
                             a close frame
  /refuse?status=N&retryAfter=S   refuse the handshake with HTTP N
  /silent?ms=M               stop reading (no pong, no echo) for M ms
  /restart?id=X&restarts=R&every=K
                             echo; the first R connections of X close with
                             1012 after K messages each
  GET /report?id=X           (plain HTTP) JSON of what X's connections
                             received and how the client closed them

Every WebSocket URL takes id=X to record what its connections receive. A
close the library refuses to send is answered with a text message
"REFUSED <why>" and the connection stays open.
"""

import asyncio
import base64
import http
import json
import logging
import signal
import socket
import struct
import sys
import urllib.parse

import websockets
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close

# The asyncio API of websockets 10.x lives on, unchanged, as
# websockets.legacy in later releases, where websockets.serve is another API.
from websockets.legacy.server import serve

records = {}


def record(id_):
    if not id_:
        return None
    return records.setdefault(id_, {"connections": [], "restarts": 0})


def parse(path):
    url = urllib.parse.urlsplit(path)
    return url.path, {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}


async def process_request(path, request_headers):
    route, q = parse(path)
    if route == "/report":
        rec = records.get(q.get("id"), {"connections": [], "restarts": 0})
        body = json.dumps(rec).encode()
        return http.HTTPStatus.OK, Headers([("Content-Type", "application/json")]), body
    if route == "/refuse":
        status = http.HTTPStatus(int(q.get("status", "503")))
        headers = Headers()
        if "retryAfter" in q:
            headers["Retry-After"] = q["retryAfter"]
        return status, headers, f"refused with {status.value}\n".encode()
    return None


async def handler(ws):
    route, q = parse(ws.path)
    rec = record(q.get("id"))
    conn = {"received": [], "closeCode": None, "closeReason": None}
    if rec is not None:
        rec["connections"].append(conn)
    restart_at = 0
    if route == "/restart" and rec is not None and rec["restarts"] < int(q.get("restarts", "1")):
        rec["restarts"] += 1
        restart_at = int(q.get("every", "10"))

    if route == "/close":
        try:
            if "code" in q:
                close = Close(int(q["code"]), q.get("reason", ""))
                # Validate first: close() marks the connection as closing
                # before it finds a forbidden code, and then sends nothing.
                close.serialize()
                await ws.close(close.code, close.reason)
            else:
                # close() always sends a code; an empty close frame is what
                # a close without one looks like on the wire (1005).
                await ws.write_close_frame(Close(1005, ""), b"")
        except Exception as exc:  # the library refused the code
            await ws.send(f"REFUSED websockets {websockets.__version__}: {exc}")
    elif route == "/silent":
        # Stop reading the socket: pings queue unanswered in the kernel.
        ws.transport.pause_reading()
        await asyncio.sleep(int(q.get("ms", "3000")) / 1000)
        ws.transport.resume_reading()
    elif route not in ("/echo", "/restart", "/drop", "/reset"):
        await ws.close(4404, f"unknown path {route}")

    try:
        async for msg in ws:
            conn["received"].append(msg if isinstance(msg, str) else base64.b64encode(msg).decode())
            # Acting on a message, not at once, leaves no doubt that the
            # client has read the handshake response before the link goes.
            if route == "/drop":
                ws.transport.close()  # FIN, no close frame
                break
            if route == "/reset":
                sock = ws.transport.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                ws.transport.abort()  # close with linger 0: RST, no close frame
                break
            # Echo only while open: after our close frame send() would wait
            # for the end of the closing handshake.
            if ws.open:
                await ws.send(msg)
            if restart_at and len(conn["received"]) == restart_at:
                restart_at = 0
                asyncio.create_task(ws.close(1012, "restart"))
    except ConnectionClosed:
        pass
    await ws.wait_closed()
    conn["closeCode"] = ws.close_code
    conn["closeReason"] = ws.close_reason


async def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="python-peer: %(message)s")
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.cancel)
    server = await serve(
        handler,
        "127.0.0.1",
        port,
        process_request=process_request,
        ping_interval=None,  # the client's keepalive is under test, not ours
        max_size=64 << 20,
        close_timeout=2,
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    try:
        await stop
    except asyncio.CancelledError:
        pass


if __name__ == "__main__":
    asyncio.run(main())
