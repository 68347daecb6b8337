// metronome's dashboard: the seed's Webhooks flow in a browser, on the admin
// API and nothing else (docs/openapi.json). Every value from the API is put in
// the page as text (textContent, never HTML); the admin token lives in
// sessionStorage and travels only in the Authorization header.
'use strict';

const TOKEN_KEY = 'metronomeAdminToken';
const main = document.getElementById('main');
const live = document.getElementById('live');
let refreshTimer = null;

// ---- building the page ----------------------------------------------------

// el('p', {class: 'x'}, 'text', child...): strings become text nodes.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (k === 'text') node.textContent = v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function show(...nodes) {
  main.replaceChildren(...nodes);
}

function say(text) {
  live.textContent = text;
}

let uid = 0;
// A labelled field: returns {wrap, input, error}.
function field(labelText, input, hint) {
  const id = input.id || `f${++uid}`;
  input.id = id;
  const error = el('p', {class: 'error', id: `${id}-error`, role: 'alert'});
  if (hint) input.setAttribute('aria-describedby', `${id}-hint`);
  const wrap = el('div', {}, el('label', {for: id}, labelText), input,
    hint ? el('p', {class: 'hint', id: `${id}-hint`}, hint) : null, error);
  return {wrap, input, error};
}

function stateWords(w) {
  if (w.state === 'disabled') return `disabled (${w.disabledReason || 'no reason given'})`;
  return w.state;
}

function stateSpan(state, words) {
  return el('span', {class: `state state-${state}`}, words || state);
}

function when(iso) {
  return iso ? iso.replace('T', ' ').replace('Z', ' UTC') : '—';
}

// ---- the API ----------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.field = body && body.field;
    this.details = body && body.details;
  }
}

async function api(method, path, body) {
  const headers = {Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) || ''}`};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, {method, headers, body: body === undefined ? undefined : JSON.stringify(body)});
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  if (res.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    signIn('The admin token was refused; sign in again.');
    throw new ApiError(401, data);
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

const enc = encodeURIComponent;

// Runs fn, showing an API error in `where` (a <p class=error>) instead of throwing.
async function attempt(where, fn) {
  if (where) where.textContent = '';
  try {
    return await fn();
  } catch (e) {
    if (where && e.status !== 401) where.textContent = e.message;
    return undefined;
  }
}

// ---- sign in ------------------------------------------------------------------

function signIn(message) {
  stopRefresh();
  document.getElementById('nav').hidden = true;
  const token = field('Admin token', el('input', {type: 'password', autocomplete: 'current-password', required: true}),
    'The admin.token of the pipeline. It is kept in this tab only and sent as a bearer header.');
  const form = el('form', {onsubmit: async (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, token.input.value);
    try {
      await api('GET', '/api/v1/status');
      route();
    } catch (e) {
      if (e.status !== 401) token.error.textContent = e.message;
    }
  }}, token.wrap, el('div', {class: 'actions'}, el('button', {type: 'submit', class: 'primary'}, 'Sign in')));
  show(el('h1', {}, 'Sign in'), message ? el('p', {class: 'error', role: 'alert'}, message) : null, form);
  token.input.focus();
}

document.getElementById('signout').addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY);
  signIn('Signed out.');
});

// ---- overview -------------------------------------------------------------------

let lastCounters = null;

async function overview() {
  const cards = el('div', {class: 'cards'});
  const ticks = el('tbody');
  const errors = el('ul');
  const reauth = el('ul');
  show(el('h1', {}, 'Overview'), cards,
    el('h2', {}, 'Next ticks'), el('div', {class: 'scroll'}, el('table', {},
      el('thead', {}, el('tr', {}, el('th', {}, 'Webhook'), el('th', {}, 'Next tick'), el('th', {}, 'State'))), ticks)),
    el('h2', {}, 'Last errors'), errors,
    el('h2', {}, 'Vehicles needing re-authentication'), reauth);
  const card = (label, value) => el('div', {class: 'card'}, el('div', {}, label), el('div', {class: 'value'}, value));
  const draw = async () => {
    const s = await api('GET', '/api/v1/status');
    const c = s.counters;
    let perMinute = '—';
    if (lastCounters) {
      const dt = (Date.now() - lastCounters.at) / 60000;
      if (dt > 0) perMinute = ((c.delivered - lastCounters.delivered) / dt).toFixed(1);
    }
    lastCounters = {at: Date.now(), delivered: c.delivered};
    cards.replaceChildren(
      card('Daemon', s.ready ? (s.stopping ? 'stopping' : 'ready') : 'not ready'),
      card('Up for', `${s.uptimeSeconds} s`),
      card('In flight', s.inFlight),
      card('Outcomes queued', s.queuedOutcomes),
      card('Deliveries per minute', perMinute),
      card('Delivered (this run)', c.delivered),
      card('Failed (this run)', c.failed),
      card('Ticks (this run)', c.ticks));
    ticks.replaceChildren(...s.nextTicks.map((t) => el('tr', {},
      el('td', {}, el('a', {href: `#/webhooks/${enc(t.webhook)}`}, t.webhook)), el('td', {}, when(t.tick)),
      el('td', {}, stateSpan(t.state)))));
    errors.replaceChildren(...(s.lastErrors.length ? s.lastErrors.map((e) => el('li', {}, `${when(e.at)} ${e.origin}: ${e.message}`))
      : [el('li', {}, 'None.')]));
    const v = await api('GET', '/api/v1/vehicles?needsReauthentication=true');
    reauth.replaceChildren(...(v.data.length ? v.data.map((x) => el('li', {}, `${x.vehicleId} (source ${x.source})`))
      : [el('li', {}, 'None.')]));
  };
  await attempt(null, draw);
  startRefresh(() => attempt(null, draw));
}

function startRefresh(fn) {
  stopRefresh();
  refreshTimer = setInterval(fn, 3000);
}

function stopRefresh() {
  if (refreshTimer) clearInterval(refreshTimer);
  refreshTimer = null;
}

// ---- webhooks -----------------------------------------------------------------------

function cadenceWords(c) {
  const opts = Object.entries(c).filter(([k]) => k !== 'policy').map(([k, v]) => `${k} ${v}`);
  return [c.policy, ...opts].join(' ');
}

function percent(r) {
  return r === null || r === undefined ? '—' : `${(r * 100).toFixed(1)} %`;
}

async function webhooks() {
  const body = el('tbody');
  const error = el('p', {class: 'error', role: 'alert'});
  const more = el('div', {class: 'actions'});
  show(el('h1', {}, 'Webhooks'),
    el('div', {class: 'actions'}, el('button', {type: 'button', class: 'primary', onclick: () => { location.hash = '#/new'; }}, '+ Add Webhook')),
    error,
    el('div', {class: 'scroll'}, el('table', {},
      el('thead', {}, el('tr', {}, ...['Name', 'State', 'Cadence', 'Next tick', 'Endpoints', 'Units', 'Vehicles',
        'Last outcome', 'Success (24 h)'].map((h) => el('th', {scope: 'col'}, h)))), body)), more);
  const load = async (cursor) => {
    const page = await api('GET', `/api/v1/webhooks?limit=50${cursor ? `&cursor=${enc(cursor)}` : ''}`);
    for (const w of page.data) {
      const last = w.lastOutcome ? `${w.lastOutcome.state}${w.lastOutcome.httpStatus ? ` (HTTP ${w.lastOutcome.httpStatus})` : ''}` : 'none yet';
      body.append(el('tr', {},
        el('td', {}, el('a', {href: `#/webhooks/${enc(w.id)}`}, w.name)),
        el('td', {}, stateSpan(w.state, stateWords(w))),
        el('td', {}, cadenceWords(w.cadence)), el('td', {}, when(w.nextTick)),
        el('td', {}, w.endpoints.join(', ')), el('td', {}, w.units), el('td', {}, w.vehicles),
        el('td', {}, last), el('td', {}, percent(w.last24h && w.last24h.successRate))));
    }
    more.replaceChildren(page.nextCursor ? el('button', {type: 'button', onclick: () => attempt(error, () => load(page.nextCursor))}, 'More webhooks') : '');
  };
  await attempt(error, () => load(null));
}

// ---- + Add Webhook --------------------------------------------------------------------

const WEEKDAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];

// The cadence builder: returns {node, value(), errorEl}.
function cadenceBuilder(onChange) {
  const kind = field('Cadence', el('select', {}, ...[['hourly', 'Hourly'], ['daily', 'Daily at a time'],
    ['weekly', 'Weekly on a day at a time'], ['monthly', 'Monthly on a day'], ['interval', 'Every N minutes (or seconds)'],
    ['cron', 'Cron expression']].map(([v, t]) => el('option', {value: v}, t))));
  const at = field('At (HH:MM, UTC)', el('input', {value: '06:30', inputmode: 'numeric'}));
  const on = field('On', el('select', {}, ...WEEKDAYS.map((d) => el('option', {value: d}, d))));
  const day = field('Day of the month (29-31: the month\'s last day when shorter)', el('input', {type: 'number', min: 1, max: 31, value: 1}));
  const every = field('Every', el('input', {type: 'number', min: 1, value: 15}));
  const unit = field('Period unit', el('select', {}, el('option', {value: 'm'}, 'minutes'), el('option', {value: 's'}, 'seconds'), el('option', {value: 'h'}, 'hours')));
  const expr = field('Cron expression (UTC)', el('input', {value: '0 */6 * * *'}), 'minute hour day month weekday');
  const error = el('p', {class: 'error', role: 'alert', id: 'cadence-error'});
  const parts = {daily: [at], weekly: [on, at], monthly: [day], interval: [every, unit], cron: [expr], hourly: []};
  const opts = el('div', {class: 'row'});
  const sync = () => {
    opts.replaceChildren(...parts[kind.input.value].map((p) => p.wrap));
    onChange();
  };
  for (const f of [kind, at, on, day, every, unit, expr]) f.input.addEventListener('input', f === kind ? sync : onChange);
  const node = el('fieldset', {}, el('legend', {}, 'Schedule'), kind.wrap, opts, error);
  sync();
  const value = () => {
    const p = kind.input.value;
    if (p === 'daily') return {policy: p, at: at.input.value};
    if (p === 'weekly') return {policy: p, on: on.input.value, at: at.input.value};
    if (p === 'monthly') return {policy: p, day: Number(day.input.value)};
    if (p === 'interval') return {policy: p, every: `${every.input.value}${unit.input.value}`};
    if (p === 'cron') return {policy: p, expr: expr.input.value};
    return {policy: p};
  };
  return {node, value, error, focus: () => kind.input.focus()};
}

async function addWebhook() {
  const error = el('p', {class: 'error', role: 'alert'});
  show(el('h1', {}, 'Add a webhook'), error);
  const catalog = await attempt(error, () => api('GET', '/api/v1/catalog'));
  if (!catalog) return;
  const name = field('Name', el('input', {required: true, autocomplete: 'off'}), '1-64 of a-z 0-9 . _ -');
  const uri = field('Callback URI', el('input', {type: 'url', required: true, placeholder: 'https://example.com/hooks/smartcar'}));
  const type = field('Type', el('select', {}, el('option', {value: 'scheduled'}, 'Scheduled')));
  const preview = el('ol', {id: 'preview'});
  const previewError = el('p', {class: 'error', role: 'alert'});
  let timer = null;
  const cadence = cadenceBuilder(() => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      cadence.error.textContent = '';
      try {
        const p = await api('POST', '/api/v1/plan', {cadence: cadence.value(), count: 5});
        preview.replaceChildren(...p.ticks.map((t) => el('li', {}, when(t))));
      } catch (e) {
        preview.replaceChildren();
        if (e.status !== 401) cadence.error.textContent = e.message;
      }
    }, 250);
  });
  const endpointsError = el('p', {class: 'error', role: 'alert'});
  const endpoints = el('fieldset', {}, el('legend', {}, 'Endpoints'),
    el('div', {class: 'checks'}, ...catalog.endpoints.map((p, i) => el('label', {},
      el('input', {type: 'checkbox', value: p, checked: ['/odometer', '/battery', '/location'].includes(p) || null,
        id: `endpoint-${i}`}), p))), endpointsError);
  const units = field('Units', el('select', {}, el('option', {value: 'metric'}, 'metric'), el('option', {value: 'imperial'}, 'imperial')));
  const sinksError = el('p', {class: 'error', role: 'alert'});
  const sinks = el('fieldset', {}, el('legend', {}, 'Sinks'),
    el('div', {class: 'checks'}, ...catalog.sinks.map((s, i) => el('label', {},
      el('input', {type: 'checkbox', value: s.name, checked: i === 0 || s.plugin === 'http' || null, id: `sink-${i}`}),
      `${s.name} (${s.plugin})`))), sinksError);
  const fieldErrors = {name: name.error, callbackUri: uri.error, cadence: cadence.error, endpoints: endpointsError,
    units: units.error, sinks: sinksError};
  const form = el('form', {onsubmit: async (ev) => {
    ev.preventDefault();
    for (const e of Object.values(fieldErrors)) e.textContent = '';
    error.textContent = '';
    const checked = (fs) => [...fs.querySelectorAll('input:checked')].map((i) => i.value);
    const body = {name: name.input.value, callbackUri: uri.input.value, cadence: cadence.value(),
      endpoints: checked(endpoints), units: units.input.value, sinks: checked(sinks)};
    try {
      const w = await api('POST', '/api/v1/webhooks', body);
      location.hash = `#/webhooks/${enc(w.id)}?new=1`;
    } catch (e) {
      if (e.status === 401) return;
      const key = (e.field || '').split(/[.[]/)[0];
      (fieldErrors[key] || error).textContent = e.message;
      say(e.message);
    }
  }}, name.wrap, uri.wrap, type.wrap, cadence.node,
  el('h2', {}, 'The next five ticks'), preview, previewError, endpoints, units.wrap, sinks,
  el('div', {class: 'actions'}, el('button', {type: 'submit', class: 'primary'}, 'Add webhook')));
  main.append(form);
  name.input.focus();
}

// ---- one webhook ----------------------------------------------------------------------

async function webhookPage(id, isNew) {
  const error = el('p', {class: 'error', role: 'alert'});
  show(error);
  const w = await attempt(error, () => api('GET', `/api/v1/webhooks/${enc(id)}`));
  if (!w) return;
  const result = el('div', {id: 'result', 'aria-live': 'polite'});
  const header = el('div', {},
    el('h1', {}, `Webhook ${w.name}`),
    el('p', {}, 'State: ', stateSpan(w.state, stateWords(w))),
    el('p', {}, `Cadence: ${cadenceWords(w.cadence)}; next tick ${when(w.nextTick)}`),
    el('p', {}, `Callback: ${w.callbackUri}`),
    el('p', {}, `Endpoints: ${w.endpoints.join(', ')}; units ${w.units}; sinks ${w.sinks.join(', ')}; ${w.vehicles} vehicle(s)`),
    w.origin === 'pipeline' ? el('p', {class: 'hint'}, `Defined in the pipeline file at ${w.definedAt}: change it there.`) : null,
    isNew ? el('p', {class: 'hint'}, 'Next: Verify the callback, Send a test payload, then Subscribe a vehicle.') : null);
  const run = (label, fn) => el('button', {type: 'button', onclick: async () => {
    result.replaceChildren(el('p', {}, `${label}…`));
    await fn();
  }}, label);
  const sinkRows = (r) => el('table', {}, el('thead', {}, el('tr', {}, ...['Sink', 'Result', 'HTTP status', 'Latency', 'Error']
    .map((h) => el('th', {scope: 'col'}, h)))),
  el('tbody', {}, ...r.sinks.map((s) => el('tr', {}, el('td', {}, s.sink), el('td', {}, s.ok ? 'ok' : 'failed'),
    el('td', {}, s.httpStatus === null ? '—' : s.httpStatus), el('td', {}, `${s.latencyMs.toFixed(1)} ms`), el('td', {}, s.error || '')))));
  const send = async (what) => {
    try {
      const r = await api('POST', `/api/v1/webhooks/${enc(w.id)}/${what}`);
      const ok = what === 'verify' ? r.verified : r.delivered;
      result.replaceChildren(el('p', {class: 'result-ok'}, what === 'verify' ? 'Verified: the callback answered the challenge.' : 'Test payload delivered.'), sinkRows(r));
      say(what === 'verify' ? 'verified' : 'test delivered');
      if (ok && what === 'verify') setTimeout(() => route(), 800);
    } catch (e) {
      if (e.status === 401) return;
      result.replaceChildren(el('p', {class: 'result-bad'}, e.message), e.details ? sinkRows(e.details) : '');
      say(e.message);
    }
  };
  const simple = (path, method = 'POST') => async () => {
    try {
      await api(method, `/api/v1/webhooks/${enc(w.id)}${path}`);
      route();
    } catch (e) {
      if (e.status !== 401) result.replaceChildren(el('p', {class: 'result-bad'}, e.message));
    }
  };
  const actions = el('div', {class: 'actions'},
    run('Verify', () => send('verify')), run('Send test payload', () => send('test')),
    w.state === 'disabled' ? run('Enable', simple('/enable')) : null,
    w.state === 'active' ? run('Disable', simple('/disable')) : null,
    w.origin === 'api' ? el('button', {type: 'button', class: 'danger', onclick: async () => {
      if (!confirm(`Delete webhook ${w.name}? Its subscriptions end; its history stays.`)) return;
      try { await api('DELETE', `/api/v1/webhooks/${enc(w.id)}`); location.hash = '#/webhooks'; } catch (e) {
        if (e.status !== 401) result.replaceChildren(el('p', {class: 'result-bad'}, e.message));
      }
    }}, 'Delete') : null,
    w.state === 'disabled' ? run('Replay failed deliveries', async () => {
      try {
        const r = await api('POST', `/api/v1/webhooks/${enc(w.id)}/replay`, {state: 'failed'});
        result.replaceChildren(el('p', {class: 'result-ok'}, `${r.replayed} deliveries queued again.`));
      } catch (e) { if (e.status !== 401) result.replaceChildren(el('p', {class: 'result-bad'}, e.message)); }
    }) : null);
  main.append(header, actions, result, subscriptions(w), deliveries(w));
}

function subscriptions(w) {
  const body = el('tbody');
  const error = el('p', {class: 'error', role: 'alert'});
  const more = el('div', {class: 'actions'});
  const search = field('Search by vehicle id', el('input', {type: 'search', autocomplete: 'off'}));
  const vehicle = field('Vehicle id', el('input', {autocomplete: 'off'}));
  const access = field('Access token (live vehicles)', el('input', {type: 'password', autocomplete: 'off'}));
  const refresh = field('Refresh token (live vehicles)', el('input', {type: 'password', autocomplete: 'off'}));
  const load = async (cursor, append) => {
    const q = search.input.value.trim();
    const page = await api('GET', `/api/v1/webhooks/${enc(w.id)}/subscriptions?limit=25${q ? `&vehicle=${enc(q)}` : ''}${cursor ? `&cursor=${enc(cursor)}` : ''}`);
    const rows = page.data.map((s) => el('tr', {},
      el('td', {}, s.vehicleId), el('td', {}, s.source), el('td', {}, when(s.subscribedAt)),
      el('td', {}, s.live ? (s.needsReauthentication ? 'live: needs re-authentication' : 'live') : 'simulated'),
      el('td', {}, el('button', {type: 'button', onclick: async () => {
        await attempt(error, () => api('DELETE', `/api/v1/webhooks/${enc(w.id)}/subscriptions/${enc(s.vehicleId)}`));
        load(null, false);
      }}, `Unsubscribe ${s.vehicleId}`))));
    if (append) body.append(...rows); else body.replaceChildren(...rows);
    if (!page.data.length && !append) body.replaceChildren(el('tr', {}, el('td', {colspan: 5}, 'No vehicle is subscribed.')));
    more.replaceChildren(page.nextCursor ? el('button', {type: 'button', onclick: () => attempt(error, () => load(page.nextCursor, true))}, 'More subscriptions') : '');
  };
  search.input.addEventListener('input', () => attempt(error, () => load(null, false)));
  const form = el('form', {onsubmit: async (ev) => {
    ev.preventDefault();
    vehicle.error.textContent = '';
    const body = {vehicleId: vehicle.input.value.trim()};
    if (access.input.value) body.accessToken = access.input.value;
    if (refresh.input.value) body.refreshToken = refresh.input.value;
    try {
      await api('POST', `/api/v1/webhooks/${enc(w.id)}/subscriptions`, body);
      say(`subscribed ${body.vehicleId}`);
      vehicle.input.value = access.input.value = refresh.input.value = '';
      load(null, false);
    } catch (e) { if (e.status !== 401) vehicle.error.textContent = e.message; }
  }}, el('div', {class: 'row'}, vehicle.wrap, access.wrap, refresh.wrap),
  el('div', {class: 'actions'}, el('button', {type: 'submit', class: 'primary'}, 'Subscribe a vehicle')));
  attempt(error, () => load(null, false));
  return el('section', {}, el('h2', {}, 'Subscriptions'), form, search.wrap, error,
    el('div', {class: 'scroll'}, el('table', {}, el('thead', {}, el('tr', {}, ...['Vehicle', 'Source', 'Subscribed', 'Credentials', '']
      .map((h) => el('th', {scope: 'col'}, h)))), body)), more);
}

function quantile(sorted, q) {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

// Deliveries per tick by outcome (bars) and attempt latency p50/p99 (lines).
function chart(list) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 760 220');
  svg.setAttribute('class', 'chart');
  svg.setAttribute('role', 'img');
  const byTick = new Map();
  for (const d of list) {
    const t = byTick.get(d.tick) || {delivered: 0, failed: 0, pending: 0, latencies: []};
    t[d.state]++;
    for (const a of d.attempts || []) t.latencies.push(a.latencyUs / 1000);
    byTick.set(d.tick, t);
  }
  const ticks = [...byTick.keys()].sort().slice(-40);
  const add = (tag, attrs, text) => {
    const n = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    if (text) n.textContent = text;
    svg.append(n);
  };
  const title = `${ticks.length} tick(s): deliveries by outcome, and attempt latency p50 and p99`;
  add('title', {}, title);
  if (!ticks.length) {
    add('text', {x: 20, y: 110}, 'No deliveries yet.');
    return svg;
  }
  const maxCount = Math.max(1, ...ticks.map((t) => { const x = byTick.get(t); return x.delivered + x.failed + x.pending; }));
  const lat = ticks.map((t) => { const l = byTick.get(t).latencies.sort((a, b) => a - b); return [quantile(l, 0.5), quantile(l, 0.99)]; });
  const maxLat = Math.max(1, ...lat.map((x) => x[1]));
  const w = 700 / ticks.length;
  ticks.forEach((t, i) => {
    const x = byTick.get(t);
    let y = 200;
    for (const [state, colour] of [['delivered', '#1a7f37'], ['failed', '#cf222e'], ['pending', '#9a6700']]) {
      const h = (x[state] / maxCount) * 170;
      if (h > 0) add('rect', {x: 40 + i * w + 1, y: y - h, width: Math.max(1, w - 2), height: h, fill: colour}, `${t}: ${x[state]} ${state}`);
      y -= h;
    }
  });
  for (const [k, colour] of [[0, '#0550ae'], [1, '#8250df']]) {
    const pts = lat.map((l, i) => `${40 + i * w + w / 2},${200 - (l[k] / maxLat) * 170}`).join(' ');
    add('polyline', {points: pts, fill: 'none', stroke: colour, 'stroke-width': 2});
  }
  add('text', {x: 40, y: 16, 'font-size': 12}, `bars: delivered / failed / pending per tick (max ${maxCount}); lines: latency p50 (blue), p99 (purple), max ${maxLat.toFixed(1)} ms`);
  return svg;
}

function deliveries(w) {
  const body = el('tbody');
  const error = el('p', {class: 'error', role: 'alert'});
  const more = el('div', {class: 'actions'});
  const detail = el('div', {id: 'delivery-detail'});
  const chartBox = el('div');
  const state = field('State', el('select', {}, el('option', {value: ''}, 'any'), ...['pending', 'delivered', 'failed'].map((s) => el('option', {value: s}, s))));
  const from = field('Ticks from (UTC)', el('input', {type: 'datetime-local'}));
  const to = field('Ticks before (UTC)', el('input', {type: 'datetime-local'}));
  let loaded = [];
  const iso = (v) => (v ? `${v.length === 16 ? `${v}:00` : v}Z` : '');
  const open = async (d) => {
    const full = await attempt(error, () => api('GET', `/api/v1/deliveries/${enc(d.id)}`));
    if (!full) return;
    const replay = el('button', {type: 'button', onclick: async () => {
      try {
        await api('POST', `/api/v1/deliveries/${enc(d.id)}/replay`);
        say(`delivery ${d.id} queued again`);
        detail.prepend(el('p', {class: 'result-ok'}, 'Queued again with the same id and bytes.'));
      } catch (e) { if (e.status !== 401) detail.prepend(el('p', {class: 'result-bad'}, e.message)); }
    }}, `Replay ${d.id}`);
    detail.replaceChildren(el('div', {class: 'panel'},
      el('h3', {}, `Delivery ${full.id}`),
      el('p', {}, `Tick ${when(full.tick)}, sink ${full.sink}, `, stateSpan(full.state), `, ${full.attemptCount} attempt(s)`),
      full.state === 'failed' ? replay : null,
      el('div', {class: 'scroll'}, el('table', {}, el('thead', {}, el('tr', {}, ...['#', 'Time', 'HTTP status', 'Latency', 'Error']
        .map((h) => el('th', {scope: 'col'}, h)))), el('tbody', {}, ...(full.attempts || []).map((a) => el('tr', {},
        el('td', {}, a.n), el('td', {}, when(a.at)), el('td', {}, a.httpStatus === null ? '—' : a.httpStatus),
        el('td', {}, `${(a.latencyUs / 1000).toFixed(1)} ms`), el('td', {}, a.error || '')))))),
      el('p', {}, 'SC-Signature: ', el('code', {}, full.signature || '(payload pruned)')),
      el('pre', {}, full.payload || '(the payload was pruned by retention)')));
    detail.querySelector('h3').setAttribute('tabindex', '-1');
    detail.querySelector('h3').focus();
  };
  const load = async (cursor) => {
    const q = [`webhook=${enc(w.id)}`, 'limit=50', 'attempts=true'];
    if (state.input.value) q.push(`state=${state.input.value}`);
    if (from.input.value) q.push(`from=${enc(iso(from.input.value))}`);
    if (to.input.value) q.push(`to=${enc(iso(to.input.value))}`);
    if (cursor) q.push(`cursor=${enc(cursor)}`);
    const page = await api('GET', `/api/v1/deliveries?${q.join('&')}`);
    loaded = cursor ? loaded.concat(page.data) : page.data;
    const rows = page.data.map((d) => el('tr', {},
      el('td', {}, when(d.tick)), el('td', {}, d.sink), el('td', {}, d.kind), el('td', {}, stateSpan(d.state)),
      el('td', {}, d.attemptCount), el('td', {}, d.lastStatus === null ? (d.lastError || '—') : `HTTP ${d.lastStatus}`),
      el('td', {}, el('button', {type: 'button', onclick: () => open(d)}, `Open ${d.id}`))));
    if (cursor) body.append(...rows); else body.replaceChildren(...rows);
    if (!loaded.length) body.replaceChildren(el('tr', {}, el('td', {colspan: 7}, 'No deliveries match.')));
    chartBox.replaceChildren(chart(loaded));
    more.replaceChildren(page.nextCursor ? el('button', {type: 'button', onclick: () => attempt(error, () => load(page.nextCursor))}, 'More deliveries') : '');
  };
  const filters = el('form', {onsubmit: (ev) => { ev.preventDefault(); attempt(error, () => load(null)); }},
    el('div', {class: 'row'}, state.wrap, from.wrap, to.wrap),
    el('div', {class: 'actions'}, el('button', {type: 'submit'}, 'Show deliveries')));
  attempt(error, () => load(null));
  return el('section', {}, el('h2', {}, 'Deliveries'), filters, error, chartBox,
    el('div', {class: 'scroll'}, el('table', {}, el('thead', {}, el('tr', {}, ...['Tick', 'Sink', 'Kind', 'State', 'Attempts', 'Last outcome', '']
      .map((h) => el('th', {scope: 'col'}, h)))), body)), more, detail);
}

// ---- routing -------------------------------------------------------------------------

async function route() {
  stopRefresh();
  if (!sessionStorage.getItem(TOKEN_KEY)) return signIn();
  document.getElementById('nav').hidden = false;
  const hash = location.hash || '#/';
  const [path, query] = hash.slice(1).split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  if (parts[0] === 'webhooks' && parts[1]) await webhookPage(parts[1], (query || '').includes('new=1'));
  else if (parts[0] === 'webhooks') await webhooks();
  else if (parts[0] === 'new') await addWebhook();
  else await overview();
  if (!main.contains(document.activeElement)) main.focus();
}

window.addEventListener('hashchange', route);
route();
