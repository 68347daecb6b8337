// Smartcar's official Node SDK as the client of metronome's Smartcar-
// compatible endpoints: with SMARTCAR_API_ORIGIN pointing at a running
// metronome, `new Vehicle(id, token).subscribe(webhookId)` subscribes a
// simulated vehicle, its payload arrives on the next tick (verified with
// smartcar.verifyPayload), `vehicle.unsubscribe(amt, webhookId)` ends it and
// no payload for it follows; errors come back as the SDK's own SmartcarError.
// Usage: node subscribe.mjs AMT PORT_FILE GO_FILE
// It serves the callback, writes its port to PORT_FILE, then waits for
// GO_FILE to hold "ORIGIN WEBHOOK_ID" (metronome running) before calling.
import http from 'node:http';
import fs from 'node:fs';
import smartcar from 'smartcar';

const [amt, portFile, goFile] = process.argv.slice(2);
const seen = new Map(); // vehicleId -> payloads, each verified
let rejected = 0;

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    res.writeHead(200, { 'Content-Type': 'application/json' });
    if (body.eventName === 'verify') {
      res.end(JSON.stringify({ challenge: smartcar.hashChallenge(amt, body.payload.challenge) }));
      return;
    }
    if (!smartcar.verifyPayload(amt, req.headers['sc-signature'], body)) rejected++;
    for (const v of body.payload.vehicles) seen.set(v.vehicleId, (seen.get(v.vehicleId) || 0) + 1);
    res.end();
  });
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const fail = (m) => { console.log('FAIL: ' + m); process.exit(1); };

async function until(what, fn, ms) {
  for (let waited = 0; waited < ms; waited += 100) {
    if (fn()) return;
    await sleep(100);
  }
  fail(what);
}

async function expectError(what, fn, type, status) {
  try {
    await fn();
  } catch (e) {
    if (!(e instanceof smartcar.SmartcarError)) fail(`${what}: not a SmartcarError: ${e}`);
    if (e.type !== type || e.statusCode !== status) fail(`${what}: ${e.type} ${e.statusCode}, want ${type} ${status}`);
    if (!e.requestId) fail(`${what}: no requestId`);
    return;
  }
  fail(`${what}: no error`);
}

async function main() {
  await until('metronome to start', () => fs.existsSync(goFile) && fs.readFileSync(goFile, 'utf8').includes('\n'), 30000);
  const [origin, webhookId] = fs.readFileSync(goFile, 'utf8').trim().split(' ');
  process.env.SMARTCAR_API_ORIGIN = origin;
  const car = 'sdk-car-1';
  const vehicle = new smartcar.Vehicle(car, 'a-vehicle-access-token');

  const sub = await vehicle.subscribe(webhookId);
  if (sub.webhookId !== webhookId || sub.vehicleId !== car) fail('subscribe answered ' + JSON.stringify(sub));
  if (!sub.meta || !sub.meta.requestId) fail('no sc-request-id in ' + JSON.stringify(sub.meta));
  await until('a payload for the subscribed vehicle', () => seen.get(car) > 0, 15000);

  await expectError('an unknown webhook', () => vehicle.subscribe('no-such-webhook'), 'RESOURCE_NOT_FOUND', 404);
  await expectError('unsubscribe with a vehicle token', () => vehicle.unsubscribe('not-the-amt', webhookId), 'AUTHENTICATION', 401);

  const unsub = await vehicle.unsubscribe(amt, webhookId);
  if (unsub.status !== 'success') fail('unsubscribe answered ' + JSON.stringify(unsub));
  await sleep(1500); // what was in flight at the unsubscribe lands
  const before = seen.get(car);
  await sleep(3500); // three more ticks of a 1 s cadence
  if (seen.get(car) !== before) fail(`payloads kept coming after unsubscribe: ${before} -> ${seen.get(car)}`);
  if (rejected) fail(`${rejected} payload(s) failed smartcar.verifyPayload`);
  console.log(`sdk client: subscribe, ${before} payload(s) delivered and verified, unsubscribe, none after; errors raised as SmartcarError`);
  server.close();
  process.exit(0);
}

server.listen(0, '127.0.0.1', () => {
  fs.writeFileSync(portFile, String(server.address().port));
  main().catch((e) => fail(e.stack || String(e)));
});
