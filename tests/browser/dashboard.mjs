// The dashboard in a real browser (Debian's chromium, headless, driven by
// playwright-core): the seed's flow end to end against a running metronome -
// sign in, add a webhook (its cadence previewed, a bad cron expression and a
// hostile name refused next to their fields, shown as text), verify it against
// a receiver, send a test, subscribe a vehicle, let a tick deliver, open the
// delivery and its attempts, make one fail, enable and replay it - with no
// script errors, and screenshots at 1280 and 390 px wide.
// Usage: node dashboard.mjs BUILD_DIR ARTIFACTS_DIR
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import crypto from 'node:crypto';
import { spawn } from 'node:child_process';
import { chromium } from 'playwright-core';

const [build, artifacts] = process.argv.slice(2);
const AMT = 'browser-amt';
const ADMIN = 'browser-admin-token';
fs.mkdirSync(artifacts, { recursive: true });
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'metronome-browser-'));

// ---- a receiver that answers challenges, and fails when told to ----
const received = [];
let failing = false;
const receiver = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    if (body.eventName === 'verify') {
      const challenge = crypto.createHmac('sha256', AMT).update(body.payload.challenge).digest('hex');
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ challenge }));
      return;
    }
    const status = failing && body.mode !== 'test' ? 500 : 200;
    received.push({ id: req.headers['metronome-delivery-id'], status, mode: body.mode });
    res.writeHead(status);
    res.end();
  });
});
await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
const hook = `http://127.0.0.1:${receiver.address().port}/hook`;

// ---- the daemon ----
const config = path.join(tmp, 'pipeline.yaml');
fs.writeFileSync(config, `version: 1
application: { management_token: ${AMT} }
plugin_path: ["${build}/plugins"]
store: { plugin: sqlite, path: "${tmp}/ledger.db" }
sources: [{ name: sim, plugin: simulated }]
sinks: [{ name: callback, plugin: http, allow_private_networks: true, timeout: 5s }]
delivery: { retries: 0, spread: [0s, 0s] }
admin: { listen: "127.0.0.1:0", token: ${ADMIN} }
`);
const log = fs.openSync(path.join(tmp, 'run.log'), 'w');
const daemon = spawn(`${build}/metronome`, ['run', '--config', config], { stdio: ['ignore', log, log] });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let base = null;
for (let i = 0; i < 200 && !base; i++) {
  const m = /API listening on (http:\/\/\S+)/.exec(fs.readFileSync(path.join(tmp, 'run.log'), 'utf8'));
  if (m) base = m[1];
  else await sleep(50);
}

let failures = 0;
let passed = 0;
function check(ok, what) {
  if (ok) passed++;
  else { failures++; console.log(`FAIL: ${what}`); }
}

async function until(what, fn, ms = 20000) {
  for (let waited = 0; waited < ms; waited += 250) {
    if (await fn()) return true;
    await sleep(250);
  }
  check(false, what);
  return false;
}

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox'] });
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
const problems = [];
page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
page.on('console', (m) => {
  // the browser itself logs a refused request: the wrong token (401) and the
  // refused name and cadence (400) are refused on purpose here
  if (m.type() === 'error' && !/Failed to load resource: the server responded with a status of (400|401)/.test(m.text()))
    problems.push(`console: ${m.text()}`);
});
page.on('dialog', (d) => { problems.push(`a dialog opened: ${d.message()}`); d.dismiss(); });

try {
  check(!!base, 'the daemon says where its API listens');
  // ---- sign in, from the keyboard ----
  await page.goto(base);
  await page.getByLabel('Admin token').focus();
  await page.keyboard.type('wrong-token');
  await page.keyboard.press('Enter');
  await until('a wrong token is refused', async () => (await page.getByText('The admin token was refused').count()) > 0, 5000);
  await page.getByLabel('Admin token').fill(ADMIN);
  await page.keyboard.press('Enter');
  await until('signed in: the overview', async () => (await page.getByRole('heading', { name: 'Overview' }).count()) > 0);
  check(!(await page.evaluate(() => location.href)).includes(ADMIN), 'the token is never in the URL');
  check(await page.evaluate((t) => sessionStorage.getItem('metronomeAdminToken') === t, ADMIN), 'the token is in sessionStorage');
  await until('the overview says the daemon is ready', async () => (await page.getByText('ready', { exact: true }).count()) > 0, 8000);
  await page.screenshot({ path: path.join(artifacts, 'overview-1280.png'), fullPage: true });

  // ---- + Add Webhook ----
  await page.getByRole('link', { name: 'Webhooks' }).click();
  await page.getByRole('button', { name: '+ Add Webhook' }).click();
  await page.getByLabel('Name').fill('<img src=x onerror=alert(1)>');
  await page.getByLabel('Callback URI').fill(hook);
  await page.getByLabel('Cadence').selectOption('cron');
  await page.getByLabel('Cron expression (UTC)').fill('61 * * * *');
  await until('a bad cron expression is shown under the cadence', async () =>
    /out of range/.test(await page.locator('#cadence-error').textContent()), 5000);
  await page.getByLabel('Cadence').selectOption('interval');
  await page.getByLabel('Every').fill('2');
  await page.getByLabel('Period unit').selectOption('s');
  await until('the next five ticks are previewed', async () => (await page.locator('#preview li').count()) === 5, 5000);
  await page.getByRole('button', { name: 'Add webhook' }).click();
  const nameError = page.locator('#' + (await page.getByLabel('Name').getAttribute('id')) + '-error');
  await until('the hostile name is refused next to the name field', async () => /bad webhook name/.test(await nameError.textContent()), 5000);
  check((await nameError.textContent()).includes('<img src=x onerror=alert(1)>'), 'the name shows as text');
  check((await page.locator('img').count()) === 0, 'no element was made from it');
  await page.getByLabel('Name').fill('seed-flow');
  await page.getByRole('button', { name: 'Add webhook' }).click();
  await until('the new webhook\'s page', async () => (await page.getByRole('heading', { name: 'Webhook seed-flow' }).count()) > 0);
  check((await page.getByText('unverified').count()) > 0, 'a new webhook is unverified, in words');

  // ---- verify, test, subscribe ----
  await page.getByRole('button', { name: 'Verify' }).click();
  await until('verified', async () => (await page.getByText('Verified: the callback answered the challenge.').count()) > 0);
  await until('the page shows it active', async () => (await page.locator('.state-active').count()) > 0);
  await page.getByRole('button', { name: 'Send test payload' }).click();
  await until('the test payload is delivered, with the receiver\'s status and latency', async () =>
    (await page.getByText('Test payload delivered.').count()) > 0 && /200/.test(await page.locator('#result').textContent())
    && / ms/.test(await page.locator('#result').textContent()));
  await page.getByLabel('Vehicle id', { exact: true }).fill('car-1');
  await page.getByRole('button', { name: 'Subscribe a vehicle' }).click();
  await until('car-1 is subscribed', async () => (await page.getByRole('button', { name: 'Unsubscribe car-1' }).count()) > 0);

  // ---- a tick delivers; the delivery opens to its attempts ----
  const showDeliveries = async (state) => {
    await page.getByLabel('State').selectOption(state);
    await page.getByRole('button', { name: 'Show deliveries' }).click();
    await sleep(300);
  };
  await until('a scheduled delivery is delivered', async () => {
    await showDeliveries('delivered');
    return (await page.locator('tbody tr', { hasText: 'scheduled' }).count()) > 0;
  });
  await page.locator('tbody tr', { hasText: 'scheduled' }).first().getByRole('button').click();
  await until('its attempts and signature', async () => {
    const t = await page.locator('#delivery-detail').textContent();
    return /200/.test(t) && /SC-Signature: [0-9a-f]{64}/.test(t) && /"eventName":"scheduled"/.test(t);
  }, 5000);
  await page.screenshot({ path: path.join(artifacts, 'webhook-1280.png'), fullPage: true });

  // ---- one fails, the webhook is disabled; enabled and replayed ----
  failing = true;
  await until('a failing receiver disables the webhook', async () => {
    await page.reload();
    await page.getByRole('heading', { name: 'Webhook seed-flow' }).waitFor();
    return (await page.getByText('disabled (retries-exhausted)').count()) > 0;
  }, 30000);
  failing = false;
  await page.getByRole('button', { name: 'Enable' }).click();
  await until('enabled', async () => (await page.getByRole('button', { name: 'Disable' }).count()) > 0);
  await showDeliveries('failed');
  const failedRow = page.locator('tbody tr', { hasText: 'scheduled' }).first();
  await until('a failed delivery is listed', async () => (await failedRow.count()) > 0, 5000);
  const openName = await failedRow.getByRole('button').textContent();
  const failedId = openName.replace('Open ', '');
  await failedRow.getByRole('button').click();
  await page.getByRole('button', { name: `Replay ${failedId}` }).click();
  await until('the replayed delivery arrives with its id', async () =>
    received.some((r) => r.id === failedId && r.status === 200));
  await until('and is recorded delivered', async () => {
    await showDeliveries('delivered');
    return (await page.getByRole('button', { name: `Open ${failedId}` }).count()) > 0;
  });
  await page.getByRole('button', { name: `Open ${failedId}` }).click();
  await until('its attempts: the failure, then the replay', async () => {
    const t = await page.locator('#delivery-detail').textContent();
    return /500/.test(t) && /200/.test(t);
  }, 5000);

  // ---- at 390 px ----
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: path.join(artifacts, 'webhook-390.png'), fullPage: true });
  check(await page.evaluate(() => document.body.scrollWidth <= window.innerWidth + 1), 'nothing overflows at 390 px');
  await page.getByRole('link', { name: 'Overview' }).click();
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
  await page.screenshot({ path: path.join(artifacts, 'overview-390.png'), fullPage: true });

  // ---- every field has a visible label; every action is a named button ----
  const unlabelled = await page.evaluate(() => [...document.querySelectorAll('input, select, textarea')]
    .filter((i) => !(i.labels && i.labels.length && i.labels[0].offsetParent !== null)).length);
  check(unlabelled === 0, `every field has a visible label (${unlabelled} without)`);

  await page.getByRole('button', { name: 'Sign out' }).click();
  check(await page.evaluate(() => sessionStorage.getItem('metronomeAdminToken') === null), 'sign-out forgets the token');
  check(problems.length === 0, `no script errors: ${problems.join('; ')}`);
} catch (e) {
  check(false, e.stack || String(e));
  await page.screenshot({ path: path.join(artifacts, 'failure.png'), fullPage: true }).catch(() => {});
} finally {
  await browser.close();
  daemon.kill('SIGTERM');
  await new Promise((r) => daemon.on('exit', r));
  receiver.close();
  if (failures) console.log(fs.readFileSync(path.join(tmp, 'run.log'), 'utf8').split('\n').slice(-30).join('\n'));
  fs.rmSync(tmp, { recursive: true, force: true });
}
console.log(`screenshots in ${artifacts}`);
console.log(`${passed} passed, ${failures} failed`);
process.exit(failures ? 1 : 0);
