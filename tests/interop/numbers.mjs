// Random doubles of every magnitude, written by JSON.stringify, one array a
// line; the C canonical writer must give back the very same text.
let seed = 20261127;
const rnd = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
const buf = new DataView(new ArrayBuffer(8));
const values = [0, -0, 1, -1, 0.1, 0.58, 1e21, 1e-7, 123456789012, 0.1 + 0.2, 5e-324,
  1.7976931348623157e308, 2 ** 53, 2 ** 53 + 2, 1e16, 1.5e-6, 0.000001, 100, 37829.5];
for (let i = 0; i < 20000; i++) {
  buf.setUint32(0, Math.floor(rnd() * 2 ** 32)); buf.setUint32(4, Math.floor(rnd() * 2 ** 32));
  const d = buf.getFloat64(0);
  if (Number.isFinite(d)) values.push(d);
  values.push(Math.round(rnd() * 1e6) / 10 ** Math.floor(rnd() * 8));
}
for (let i = 0; i < values.length; i += 50) console.log(JSON.stringify(values.slice(i, i + 50)));
