// An application written against Smartcar's official Node SDK, unchanged,
// subscribing a vehicle to a metronome webhook: only SMARTCAR_API_ORIGIN
// says where the API is (a running `metronome run` with an `admin` section).
//   node subscribe.mjs VEHICLE_ID WEBHOOK            subscribe (any token, for simulated vehicles)
//   node subscribe.mjs --unsubscribe VEHICLE_ID WEBHOOK
// WEBHOOK is the webhook's id (its name works too). Unsubscribing takes the
// application management token: $SMARTCAR_MANAGEMENT_TOKEN.
import smartcar from 'smartcar';

const args = process.argv.slice(2);
const unsubscribe = args[0] === '--unsubscribe';
const [vehicleId, webhook] = unsubscribe ? args.slice(1) : args;
const vehicle = new smartcar.Vehicle(vehicleId, process.env.SMARTCAR_ACCESS_TOKEN || 'simulated');
try {
  if (unsubscribe) {
    const r = await vehicle.unsubscribe(process.env.SMARTCAR_MANAGEMENT_TOKEN, webhook);
    console.log(`unsubscribed ${vehicleId}: ${r.status}`);
  } else {
    const r = await vehicle.subscribe(webhook);
    console.log(`subscribed ${r.vehicleId} to webhook ${r.webhookId}`);
  }
} catch (e) {
  console.log(`${e.name}: ${e.message} (HTTP ${e.statusCode})`);
  process.exit(1);
}
