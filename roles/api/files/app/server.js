'use strict';
/**
 * The example API the `api` role deploys: plain node:http, no dependencies.
 *   GET /health        → 200 {"status":"ok","version":"1.0.0","instance":0,"pid":1234}
 *   GET /sign?msg=TEXT → 200 {"hmac":"<hex HMAC-SHA256 of TEXT with APP_SECRET>"}
 * PORT and APP_SECRET come from the environment (the role writes them from the vault).
 * Under PM2 in cluster mode every worker shares the port; NODE_APP_INSTANCE is its id.
 */
const http = require('node:http');
const { createHmac } = require('node:crypto');
const { version } = require('./package.json');

const port = Number(process.env.PORT || 3000);
const host = process.env.HOST || '127.0.0.1';
const secret = process.env.APP_SECRET;
const instance = Number(process.env.NODE_APP_INSTANCE || 0);

if (!secret) {
  console.error('APP_SECRET is not set: refusing to start');
  process.exit(1);
}

function send(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  if (url.pathname === '/health') return send(res, 200, { status: 'ok', version, instance, pid: process.pid });
  if (url.pathname === '/sign') {
    const hmac = createHmac('sha256', secret).update(url.searchParams.get('msg') || '').digest('hex');
    return send(res, 200, { hmac });
  }
  send(res, 404, { error: 'not found' });
});
// Idle keep-alive connections from nginx must outlive nginx's own idle timeout on them.
server.keepAliveTimeout = 65_000;

server.listen(port, host, () => {
  console.log(`example-api ${version} instance ${instance} listening on ${host}:${port}`);
  // PM2 (wait_ready) sends traffic to a new worker only after this.
  if (process.send) process.send('ready');
});

// PM2 stops a worker with SIGINT (reload: after its replacement is ready). Finish the
// requests in flight, close idle connections, then exit.
function shutdown() {
  server.close(() => process.exit(0));
  server.closeIdleConnections?.();
}
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
