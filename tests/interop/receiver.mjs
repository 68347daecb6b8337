// A callback receiver written the way Smartcar's docs tell receivers to be:
// it answers the verify challenge with smartcar.hashChallenge and checks every
// payload with smartcar.verifyPayload(amt, SC-Signature, JSON.parse(body)).
// Usage: node receiver.mjs AMT PORT_FILE STATS_FILE
import http from 'node:http';
import fs from 'node:fs';
import smartcar from 'smartcar';

const [amt, portFile, statsFile] = process.argv.slice(2);
const stats = { verify: 0, payloads: 0, verified: 0, rejected: [], modes: {}, units: {}, nonAscii: 0, errors: 0, floats: 0 };

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const raw = Buffer.concat(chunks).toString('utf8');
    let body;
    try { body = JSON.parse(raw); } catch (e) { res.writeHead(400); res.end(); return; }
    if (body.eventName === 'verify') {
      stats.verify++;
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ challenge: smartcar.hashChallenge(amt, body.payload.challenge) }));
      return;
    }
    stats.payloads++;
    if (smartcar.verifyPayload(amt, req.headers['sc-signature'], body)) stats.verified++;
    else stats.rejected.push(req.headers['metronome-delivery-id']);
    stats.modes[body.mode] = (stats.modes[body.mode] || 0) + 1;
    if (/[^\x00-\x7f]/.test(raw)) stats.nonAscii++;
    if (/"code":409/.test(raw)) stats.errors++;
    if (/\d\.\d/.test(raw)) stats.floats++;
    for (const v of body.payload.vehicles) for (const d of v.data) {
      const u = d.headers && d.headers['sc-unit-system'];
      if (u) stats.units[u] = (stats.units[u] || 0) + 1;
    }
    res.writeHead(200); res.end();
  });
});

process.on('SIGTERM', () => {
  fs.writeFileSync(statsFile, JSON.stringify(stats));
  server.close(() => process.exit(0));
});
server.listen(0, '127.0.0.1', () => fs.writeFileSync(portFile, String(server.address().port)));
