'use strict';
// A scriptable WebSocket server on Node's `ws`, for resocket's interop suite.
//
// Usage: node server.js [port]   (0 or none: any free port)
// It listens on 127.0.0.1 and prints the port it got as the first line on
// stdout; everything else goes to stderr.
//
// Each connection does what its URL asks (see interop/README.md):
//   /echo                      echo every message, same type
//   /close?code=N&reason=R     close with code N and reason R at once;
//                              no code: a close frame without one (1005)
//   /drop                      at the first message, end TCP (FIN) without
//                              a close frame
//   /reset                     at the first message, reset TCP (RST)
//                              without a close frame
//   /refuse?status=N&retryAfter=S   refuse the handshake with HTTP N
//   /silent?ms=M               stop reading (no pong, no echo) for M ms
//   /restart?id=X&restarts=R&every=K
//                              echo; the first R connections of X close
//                              with 1012 after K messages each
//   GET /report?id=X           (plain HTTP) JSON of what X's connections
//                              received and how the client closed them
// Every WebSocket URL takes id=X to record what its connections receive.
// A close the library refuses to send is answered with a text message
// "REFUSED <why>" and the connection stays open.

const http = require('http');
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2] || 0);

// What each id's connections received, and how they ended.
const records = new Map();
function record(id) {
  if (!id) return null;
  if (!records.has(id)) records.set(id, { connections: [], restarts: 0 });
  return records.get(id);
}

function log(...args) {
  process.stderr.write(`node-peer: ${args.join(' ')}\n`);
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  if (url.pathname === '/report') {
    const r = records.get(url.searchParams.get('id')) || { connections: [], restarts: 0 };
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(r));
    return;
  }
  res.writeHead(404, { 'Content-Type': 'text/plain' });
  res.end('not a WebSocket request\n');
});

const wss = new WebSocketServer({
  server,
  maxPayload: 64 << 20,
  // The public way to refuse a handshake with a status and headers.
  verifyClient: (info, cb) => {
    const url = new URL(info.req.url, 'http://127.0.0.1');
    if (url.pathname !== '/refuse') return cb(true);
    const status = Number(url.searchParams.get('status') || 503);
    const headers = {};
    if (url.searchParams.has('retryAfter')) headers['Retry-After'] = url.searchParams.get('retryAfter');
    cb(false, status, http.STATUS_CODES[status] || 'Refused', headers);
  },
});

wss.on('connection', (ws, req) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  const q = url.searchParams;
  const rec = record(q.get('id'));
  const conn = { received: [], closeCode: null, closeReason: null };
  if (rec) rec.connections.push(conn);
  let restartAt = 0;
  if (url.pathname === '/restart' && rec && rec.restarts < Number(q.get('restarts') || 1)) {
    rec.restarts++;
    restartAt = Number(q.get('every') || 10);
  }

  ws.on('error', (err) => log('connection error:', err.message));
  ws.on('close', (code, reason) => {
    conn.closeCode = code;
    conn.closeReason = reason.toString();
  });
  ws.on('message', (data, isBinary) => {
    conn.received.push(isBinary ? data.toString('base64') : data.toString());
    // Acting on a message, not at once, leaves no doubt that the client has
    // read the handshake response before the link goes.
    if (url.pathname === '/drop') return req.socket.end(); // FIN, no close frame
    if (url.pathname === '/reset') return req.socket.resetAndDestroy(); // RST (SO_LINGER 0)
    // Echo only while open: after our close frame ws refuses to send.
    if (ws.readyState === ws.OPEN) ws.send(data, { binary: isBinary });
    if (restartAt > 0 && conn.received.length === restartAt) {
      restartAt = 0;
      ws.close(1012, 'restart');
    }
  });

  switch (url.pathname) {
    case '/echo':
    case '/restart':
    case '/drop':
    case '/reset':
      break;
    case '/close': {
      try {
        if (q.has('code')) ws.close(Number(q.get('code')), q.get('reason') || '');
        else ws.close(); // a close frame with no payload: 1005 at the client
      } catch (err) {
        ws.send(`REFUSED ws ${require('ws/package.json').version}: ${err.message}`);
      }
      break;
    }
    case '/silent': {
      // Stop reading the socket: pings queue unanswered in the kernel.
      ws.pause();
      setTimeout(() => ws.resume(), Number(q.get('ms') || 3000)).unref();
      break;
    }
    default:
      ws.close(4404, `unknown path ${url.pathname}`);
  }
});

server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`${server.address().port}\n`);
});

// The test stops us with a signal; end at once on SIGTERM and SIGINT too.
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
