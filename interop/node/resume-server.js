'use strict';
// The server side of resocket's resume protocol (docs/protocol.md), on
// Node's `ws`, written from that page alone: test-only, for the interop
// suite (interop/resume_test.go). It proves the page is a protocol, not a
// description of the Go code.
//
// Usage: node resume-server.js [port] [resumeTimeoutMs]
// It listens on 127.0.0.1 (port 0 or none: any free port) and prints the
// port it got as the first line on stdout; everything else goes to stderr.
//
// WebSocket:
//   /resume?id=X&n=N   a resumable session (§1–§5). Its application records
//                      every client message it receives under X and sends
//                      the client N numbered text messages, m000001…, as
//                      fast as the outbox (1024 messages, §6) lets it,
//                      in batch frames (§2) to a client that takes them.
// Plain HTTP (the test's controls):
//   GET /report?id=X   JSON: X's sessions, what each received, and counters
//   GET /wait?id=X&received=K&ms=T
//                      answers /report once X's latest session has received
//                      at least K messages, or after T ms: a wait on an
//                      event, not a poll
//   GET /cut           ends every WebSocket's TCP connection at once, without
//                      a close frame (sessions stay, waiting for a resume)
//   GET /pause         stops reading every WebSocket, keeping it open: a
//                      half-open link for the client's keepalive to find;
//                      its resume is then a takeover (§5)
//   GET /drain         a shutdown (§5 "the server restarts"): every
//                      connection closes with 1012 after a final ack, and
//                      upgrades are refused with 503 and Retry-After until
//   GET /undrain       ends it
//
// Where docs/protocol.md left a choice open, the comments marked "page:"
// say what this server chose.

const crypto = require('crypto');
const http = require('http');
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2] || 0);
const resumeTimeoutMs = Number(process.argv[3] || 2 * 60 * 1000); // §5: our default, 2 minutes

// §3 (our Go server's values): one ack after 64 new messages, or 50 ms after the first one not yet
// acknowledged. §6: at most 1024 unacknowledged messages in the outbox.
const ACK_EVERY = 64;
const ACK_AFTER_MS = 50;
const SEND_BUFFER = 1024;

const MAX_COUNT = (1n << 64n) - 1n;
const TOKEN = /^[A-Za-z0-9_-]{1,128}$/; // §1: IDs and secrets
const COUNT = /^(0|[1-9][0-9]*)$/; // §1: decimal, no sign, no leading zero

const KIND_DATA = 0x00;
const KIND_ACK = 0x01;
const KIND_BATCH = 0x03;

// §2 batch frames: page: the Go server's limits, 256 messages and 64 KiB,
// and never more than the client's Resocket-Batch.
const BATCH_MESSAGES = 256;
const BATCH_BYTES = 64 << 10;

function log(...args) {
  process.stderr.write(`resume-peer: ${args.join(' ')}\n`);
}

// ---------------------------------------------------------------------------
// Sessions, in memory.

const sessions = new Map(); // session ID → session
const byApp = new Map(); // the URL's id=X → [session…], oldest first

function newSession(appID, n) {
  const id = crypto.randomBytes(16).toString('base64url'); // §7: 128 bits
  const secret = crypto.randomBytes(32).toString('base64url'); // §7: 256 bits
  const s = {
    id,
    appID,
    // §7: only a SHA-256 hash of the secret is kept.
    secretHash: crypto.createHash('sha256').update(secret).digest(),
    // Client → server: how many of the client's data messages the
    // application has received (the server's received count).
    received: 0,
    // Server → client: the outbox holds every message numbered and not
    // yet acknowledged, numbers acked+1 … acked+outbox.length.
    acked: 0,
    outbox: [], // { frame: Buffer (kind byte + payload), binary: bool }
    written: 0, // the highest number written on any connection
    conn: null, // the connection now serving the session
    expiry: null, // the resume timeout's timer while there is no connection
    over: false,
    // The application.
    app: { n, sent: 0, received: [] },
    // What the test checks.
    stats: { connections: 0, resumes: 0, takeovers: 0, ackRegressions: 0, finalAcks: 0, ackedAtClose: null, protocolErrors: [], batches: 0 },
  };
  sessions.set(id, s);
  if (!byApp.has(appID)) byApp.set(appID, []);
  byApp.get(appID).push(s);
  return { s, secret };
}

function forget(s, why) {
  if (!sessions.has(s.id)) return;
  sessions.delete(s.id);
  clearTimeout(s.expiry);
  s.over = true;
  log(`session ${s.id} (${s.appID}) forgotten: ${why}`);
}

// lastNumbered is the number of the last message the application has sent.
function lastNumbered(s) {
  return s.acked + s.outbox.length;
}

// ---------------------------------------------------------------------------
// The application: records what it receives, sends n numbered messages.

function appReceive(s, data, isBinary) {
  s.app.received.push(isBinary ? data.toString('base64') : data.toString());
  wakeWaiters(s.appID);
}

function appPump(s) {
  while (!s.over && s.app.sent < s.app.n && s.outbox.length < SEND_BUFFER) {
    s.app.sent++;
    sessionSend(s, Buffer.from(`m${String(s.app.sent).padStart(6, '0')}`), false);
  }
  if (s.conn) connWriteUpTo(s.conn, lastNumbered(s));
}

// ---------------------------------------------------------------------------
// Sending: number (implicitly), keep until acknowledged, write if connected.

// sessionSend numbers a message into the outbox; the caller writes it.
function sessionSend(s, payload, binary) {
  const frame = Buffer.concat([Buffer.of(KIND_DATA), payload]); // §2
  s.outbox.push({ frame, binary });
}

// connWriteUpTo writes the session's messages on connection c, in order,
// from c.nextOut to number last: several to a batch frame (§2) when the
// client takes them, else one data frame each.
function connWriteUpTo(c, last) {
  const s = c.session;
  while (c.nextOut <= last) {
    const entries = [];
    let size = 1; // the kind byte
    for (let num = c.nextOut; num <= last && entries.length < BATCH_MESSAGES; num++) {
      const m = s.outbox[num - s.acked - 1];
      const data = m.frame.subarray(1);
      const entry = Buffer.concat([Buffer.of(m.binary ? 0x02 : 0x01), uvarint(data.length), data]);
      if (size + entry.length > c.batchBytes) break;
      entries.push(entry);
      size += entry.length;
    }
    if (entries.length < 2) {
      connWrite(c, c.nextOut);
      continue;
    }
    c.ws.send(Buffer.concat([Buffer.of(KIND_BATCH), ...entries]), { binary: true });
    s.stats.batches++;
    c.nextOut += entries.length;
    if (c.nextOut - 1 > s.written) s.written = c.nextOut - 1;
  }
}

// uvarint is n as an unsigned LEB128 varint, in the fewest bytes (§2).
function uvarint(n) {
  const out = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

// connWrite writes message number num of the session on connection c; every
// connection writes the outbox in order, from the client's resume point.
function connWrite(c, num) {
  const s = c.session;
  if (num !== c.nextOut) throw new Error(`write ${num} on a connection at ${c.nextOut}`);
  const m = s.outbox[num - s.acked - 1];
  c.ws.send(m.frame, { binary: m.binary });
  c.nextOut++;
  if (num > s.written) s.written = num;
}

function sendAck(c) {
  clearTimeout(c.ackTimer);
  c.ackTimer = null;
  c.unacked = 0;
  if (c.ws.readyState !== c.ws.OPEN) return false;
  const frame = Buffer.alloc(9); // §2: kind, then 8 bytes big-endian
  frame[0] = KIND_ACK;
  frame.writeBigUInt64BE(BigInt(c.session.received), 1);
  c.ws.send(frame, { binary: true });
  return true;
}

// ---------------------------------------------------------------------------
// Connections.

function attach(ws, s, clientReceived, serverReceived, batchBytes) {
  const c = {
    ws,
    session: s,
    batchBytes, // §2: the largest batch frame the client takes (0: none)
    // §2: implicit numbering. The client's first data frame here is
    // number (the server's Resocket-Received) + 1; ours is (the client's
    // Resocket-Received) + 1.
    nextIn: serverReceived + 1,
    nextOut: clientReceived + 1,
    unacked: 0,
    ackTimer: null,
    serverClosing: false,
    detached: false,
  };
  s.conn = c;
  s.stats.connections++;
  clearTimeout(s.expiry);
  s.expiry = null;

  ws.on('error', (err) => log(`session ${s.id}: connection error: ${err.message}`));
  ws.on('message', (data, isBinary) => onFrame(c, data, isBinary));
  // §3: "in answer to the other side's close frame before its own, it
  // should send an ack with its final count". ws answers a close frame
  // itself, in its receiver's 'conclude' listener, with no hook before
  // it; a listener put ahead of ws's own is the only way to write the ack
  // first. (ws's _receiver is private: pinned ws 8.23.0.)
  ws._receiver.prependListener('conclude', () => {
    if (c.detached) return;
    if (sendAck(c)) s.stats.finalAcks++;
    // What the client had acknowledged when its close frame came: with
    // its final ack (§3), everything it took.
    s.stats.ackedAtClose = s.acked;
    // §5: a close frame the client sends first ends the session.
    if (!c.serverClosing) forget(s, 'the client closed');
  });
  ws.on('close', (code) => {
    clearTimeout(c.ackTimer);
    if (c.detached) return;
    c.detached = true;
    if (s.conn === c) s.conn = null;
    if (s.over) return;
    // §5: the connection dropped (or we closed it): keep the session for
    // the resume timeout.
    log(`session ${s.id}: connection ended (${code}); kept for ${resumeTimeoutMs} ms`);
    s.expiry = setTimeout(() => forget(s, 'resume timeout'), resumeTimeoutMs);
    s.expiry.unref();
  });

  // §1 "Resumed": drop what the client has, send the rest from there, in
  // order, before anything new.
  connWriteUpTo(c, lastNumbered(s));
  appPump(s);
}

// detach stops a connection from serving its session (a takeover) and ends
// it. page: §5 says the server "closes that connection first" without
// saying how; the client has left it, so nothing is sent: its TCP ends.
function detach(c) {
  c.detached = true;
  clearTimeout(c.ackTimer);
  if (c.session.conn === c) c.session.conn = null;
  c.ws.terminate();
}

function protocolError(c, why) {
  const s = c.session;
  log(`session ${s.id}: protocol error: ${why}`);
  s.stats.protocolErrors.push(why);
  closeConn(c, 1002, why.slice(0, 120));
}

// closeConn closes a connection from the server's side, after the final
// ack (§3).
function closeConn(c, code, reason) {
  if (c.serverClosing || c.ws.readyState !== c.ws.OPEN) return;
  if (sendAck(c)) c.session.stats.finalAcks++;
  c.serverClosing = true;
  c.ws.close(code, reason);
}

function onFrame(c, data, isBinary) {
  if (c.detached || c.serverClosing) return;
  const s = c.session;
  // §2: one frame per WebSocket message; its first byte is its kind.
  if (data.length === 0) return protocolError(c, 'empty message');
  switch (data[0]) {
    case KIND_DATA: {
      const num = c.nextIn++;
      // §2: at or below the received count: a replay of what we have.
      if (num <= s.received) return;
      s.received = num;
      // §3: the count advances once the application has the message.
      appReceive(s, data.subarray(1), isBinary);
      if (++c.unacked >= ACK_EVERY) sendAck(c);
      else if (!c.ackTimer) c.ackTimer = setTimeout(() => sendAck(c), ACK_AFTER_MS);
      return;
    }
    case KIND_ACK: {
      if (!isBinary) return protocolError(c, 'ack sent as text');
      if (data.length !== 9) return protocolError(c, `ack of ${data.length} bytes`);
      const count = data.readBigUInt64BE(1);
      // §4: an ack may not exceed the number of the last data message sent.
      if (count > BigInt(s.written)) return protocolError(c, `ack ${count} beyond ${s.written} sent`);
      const n = Number(count);
      // page: §4 does not say whether an ack below an earlier one is an
      // error; it is ignored here (it acknowledges nothing new) and
      // counted, so that the test can assert our client never sends one.
      if (n < s.acked) {
        log(`session ${s.id}: ack ${n} below ${s.acked} acknowledged (connection ${s.stats.connections}, written ${s.written}, state ${c.ws.readyState})`);
        s.stats.ackRegressions++;
        return;
      }
      s.outbox.splice(0, n - s.acked);
      s.acked = n;
      appPump(s);
      return;
    }
    default:
      return protocolError(c, `frame kind ${data[0]}`);
  }
}

// ---------------------------------------------------------------------------
// The handshake (§1).

let draining = false;

// handshake decides what an upgrade request gets: a refusal, or the
// session to serve with the response headers. It changes nothing.
function handshake(req, url) {
  const h = req.headers;
  const refuse = (status, error, extra) => ({ refuse: { status, error, headers: extra || {} } });
  if (draining) return refuse(503, 'shutting down', { 'Retry-After': '1' });
  if (h['resocket-resume'] !== '1') return refuse(400, 'Resocket-Resume missing or not 1');
  // §1: the client's optional Resocket-Batch; malformed, like any count: 400.
  const batch = h['resocket-batch'];
  if (batch !== undefined && (!COUNT.test(batch) || BigInt(batch) > MAX_COUNT)) return refuse(400, 'malformed Resocket-Batch');
  const batchBytes = batch === undefined ? 0 : Number(BigInt(batch) < BigInt(BATCH_BYTES) ? batch : BATCH_BYTES);
  const id = h['resocket-session'];
  if (id === undefined) return { create: true, batchBytes };
  if (!TOKEN.test(id)) return refuse(400, 'malformed Resocket-Session');
  const secret = h['resocket-secret'];
  if (secret === undefined) return refuse(400, 'Resocket-Secret missing'); // §7
  if (!TOKEN.test(secret)) return refuse(400, 'malformed Resocket-Secret');
  const rcv = h['resocket-received'];
  // page: §1 lists Resocket-Received as sent "resuming" but does not say
  // what its absence means; a resume without it has no resume point: 400.
  if (rcv === undefined) return refuse(400, 'Resocket-Received missing');
  if (!COUNT.test(rcv) || BigInt(rcv) > MAX_COUNT) return refuse(400, 'malformed Resocket-Received');
  const s = sessions.get(id);
  // §1: an ID the server does not know starts a new session.
  if (!s) return { create: true, lost: id, batchBytes };
  const hash = crypto.createHash('sha256').update(secret).digest();
  if (!crypto.timingSafeEqual(hash, s.secretHash)) return refuse(403, 'wrong secret');
  // §4: a resume point may not exceed the last message sent, nor be
  // below what the client has already acknowledged.
  const point = BigInt(rcv);
  if (point > BigInt(s.written)) return refuse(400, `Resocket-Received ${rcv} beyond ${s.written} sent`);
  if (point < BigInt(s.acked)) return refuse(400, `Resocket-Received ${rcv} below ${s.acked} acknowledged`);
  return { resume: s, clientReceived: Number(point), batchBytes };
}

function refuseUpgrade(socket, status, error, headers) {
  const body = `${error}\n`;
  const all = {
    Connection: 'close',
    'Content-Type': 'text/plain',
    'Content-Length': Buffer.byteLength(body),
    'Resocket-Error': error,
    ...headers,
  };
  socket.once('finish', socket.destroy);
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\n` +
      Object.entries(all).map(([k, v]) => `${k}: ${v}`).join('\r\n') +
      '\r\n\r\n' + body,
  );
}

const wss = new WebSocketServer({ noServer: true, maxPayload: (16 << 20) + 1 }); // §6

// The response headers of the upgrade under way: ws emits 'headers'
// synchronously from handleUpgrade, before its callback.
let pending = null;
wss.on('headers', (headers) => {
  if (pending) headers.push(...pending);
});

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  const q = url.searchParams;
  const json = (v) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(v));
  };
  switch (url.pathname) {
    case '/report':
      return json(report(q.get('id')));
    case '/wait': {
      const id = q.get('id');
      const want = Number(q.get('received') || 0);
      const w = { id, want, done: () => json(report(id)) };
      w.timer = setTimeout(() => {
        waiters.delete(w);
        w.done();
      }, Number(q.get('ms') || 10000));
      waiters.add(w);
      return wakeWaiters(id);
    }
    case '/cut': {
      let cut = 0;
      for (const ws of wss.clients) {
        ws.terminate(); // destroys the socket: no close frame
        cut++;
      }
      return json({ cut });
    }
    case '/pause': {
      // A half-open link, seen from the client: the server stops reading
      // (no pong, no ack, nothing received) and keeps the connection.
      let paused = 0;
      for (const ws of wss.clients) {
        ws.pause();
        paused++;
      }
      return json({ paused });
    }
    case '/drain': {
      draining = true;
      let closed = 0;
      for (const s of sessions.values()) {
        if (s.conn) {
          closeConn(s.conn, 1012, 'restart');
          closed++;
        }
      }
      return json({ closed });
    }
    case '/undrain':
      draining = false;
      return json({});
    default:
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      return res.end('not found\n');
  }
});

const waiters = new Set();
function wakeWaiters(appID) {
  for (const w of waiters) {
    if (w.id !== appID) continue;
    const list = byApp.get(appID) || [];
    const latest = list[list.length - 1];
    if (latest && latest.app.received.length >= w.want) {
      clearTimeout(w.timer);
      waiters.delete(w);
      w.done();
    }
  }
}

function report(appID) {
  return {
    sessions: (byApp.get(appID) || []).map((s) => ({
      session: s.id,
      live: sessions.has(s.id),
      connected: s.conn !== null,
      received: s.app.received,
      sent: s.app.sent,
      acked: s.acked,
      written: s.written,
      ...s.stats,
    })),
  };
}

server.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  if (url.pathname !== '/resume') return refuseUpgrade(socket, 404, 'unknown path');
  const d = handshake(req, url);
  if (d.refuse) {
    log(`refused ${d.refuse.status}: ${d.refuse.error}`);
    return refuseUpgrade(socket, d.refuse.status, d.refuse.error, d.refuse.headers);
  }
  let s;
  let headers;
  let clientReceived = 0;
  if (d.create) {
    const created = newSession(url.searchParams.get('id') || '', Number(url.searchParams.get('n') || 0));
    s = created.s;
    if (d.lost) log(`session ${d.lost} unknown: new session ${s.id}`);
    headers = [
      'Resocket-Resume: 1',
      `Resocket-Session: ${s.id}`,
      'Resocket-Resumed: 0',
      `Resocket-Secret: ${created.secret}`,
      'Resocket-Received: 0',
    ];
  } else {
    s = d.resume;
    clientReceived = d.clientReceived;
    headers = [
      'Resocket-Resume: 1',
      `Resocket-Session: ${s.id}`,
      'Resocket-Resumed: 1',
      `Resocket-Received: ${s.received}`,
    ];
  }
  // Fixed now, in this tick: nothing the old connection brings after the
  // takeover counts (it is ended before it could), so the client's next
  // data frame is number s.received + 1.
  const serverReceived = s.received;
  let upgraded = false;
  pending = headers;
  try {
    wss.handleUpgrade(req, socket, head, (ws) => {
      upgraded = true;
      if (!d.create) {
        s.stats.resumes++;
        // §1: the client's resume point acknowledges what it has.
        s.outbox.splice(0, clientReceived - s.acked);
        s.acked = clientReceived;
        // §5 takeover: a connection the server still holds is closed
        // first, then the new one is served.
        if (s.conn) {
          s.stats.takeovers++;
          detach(s.conn);
        }
      }
      attach(ws, s, clientReceived, serverReceived, d.batchBytes);
    });
  } finally {
    pending = null;
  }
  // ws refused the WebSocket handshake itself (a bad key, say): a session
  // created for it serves nothing.
  if (!upgraded && d.create) forget(s, 'the upgrade failed');
});

server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`${server.address().port}\n`);
});

// The test stops us with a signal; end at once on SIGTERM and SIGINT too.
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
