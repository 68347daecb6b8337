// The reference's signature vectors against the official SDK: every challenge
// hashes as listed and every payload verifies exactly when sdk_verifies says.
import fs from 'node:fs';
import smartcar from 'smartcar';

const v = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
let failed = 0;
for (const c of v.challenges) {
  if (smartcar.hashChallenge(c.amt, c.challenge) !== c.response) { failed++; console.log('challenge', c); }
}
for (const p of v.payloads) {
  if (smartcar.verifyPayload(p.amt, p.signature, JSON.parse(p.body)) !== p.sdk_verifies) { failed++; console.log('payload', p.name); }
}
console.log(`vectors: ${v.challenges.length + v.payloads.length - failed} as expected, ${failed} not`);
process.exit(failed ? 1 : 0);
