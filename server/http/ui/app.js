// The status page: one event stream (GET /v1/events) feeds the host,
// workers, calls, failures, restarts and charts; the form runs calls; the
// selected call's logs stream from GET /v1/calls/{id}/logs.

import { SseStream } from '/ui/sse.js';
import { tokens, viewerAuth, adminAuth, request, askToken } from '/ui/api.js';
import { drawThroughput, drawLatency } from '/ui/charts.js';
import { buildArgsForm } from '/ui/form.js';
import { h, fmtMs, fmtTime, shortId, renderProblem, renderLogs, logLine } from '/ui/view.js';

const $ = (id) => document.getElementById(id);

const MAX_ENDED = 100;
const MAX_FAILURES = 20;
const MAX_SERIES = 300;
const MAX_RESTARTS = 50;
const MAX_LOG_LINES = 2000;

const state = {
  pool: null,
  calls: new Map(), // key -> call
  failures: [],
  series: [],
  restarts: [],
  selected: null, // call id whose logs are shown
};

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);

// A call's key: its id, or for a call the viewer may not see, its
// function and creation time (a queued event and its end share both).
function callKey(c) {
  return c.id ?? `anon:${c.function}:${c.created}`;
}

function putCall(c) {
  let key = callKey(c);
  let old = state.calls.get(key);
  if (!old && !c.id && TERMINAL.has(c.state)) {
    // The end of a hidden call whose creation time was written a
    // millisecond apart: the oldest open hidden call of that function
    // created within 2 ms.
    const t = Date.parse(c.created);
    let best = null;
    for (const [k, o] of state.calls) {
      if (o.id || o.function !== c.function || TERMINAL.has(o.state)) continue;
      if (Math.abs(Date.parse(o.created) - t) <= 2 && (!best || cmpCreated(o, best[1]) < 0)) best = [k, o];
    }
    if (best) {
      state.calls.delete(best[0]);
      old = best[1];
      key = callKey(c);
    }
  }
  state.calls.set(key, old ? { ...old, ...c } : c);
}

function pruneCalls() {
  const ended = [...state.calls.entries()]
    .filter(([, c]) => TERMINAL.has(c.state))
    .sort((a, b) => cmpCreated(b[1], a[1]));
  for (const [key, c] of ended.slice(MAX_ENDED)) if (c.id !== state.selected) state.calls.delete(key);
}

function cmpCreated(a, b) {
  return (a.created || '') < (b.created || '') ? -1 : (a.created || '') > (b.created || '') ? 1 : 0;
}

// ---- rendering, at most once a frame ----

const dirty = new Set();
let frame = 0;
function invalidate(...parts) {
  for (const p of parts) dirty.add(p);
  if (!frame) frame = requestAnimationFrame(render);
}

function render() {
  frame = 0;
  const parts = new Set(dirty);
  dirty.clear();
  if (parts.has('pool')) renderPool();
  if (parts.has('calls')) renderCalls();
  if (parts.has('failures')) renderFailures();
  if (parts.has('series')) renderSeries();
  if (parts.has('restarts')) renderRestarts();
}

function stateText(p) {
  if (!p) return 'unknown';
  if (p.draining) return `${p.state}, draining`;
  return p.state;
}

function renderPool() {
  const p = state.pool;
  if (!p) return;
  const badge = $('state');
  badge.dataset.state = p.state;
  let st = stateText(p);
  if (p.state === 'unavailable' && p.unavailable_until) {
    const left = Date.parse(p.unavailable_until) - Date.now();
    st += ` until ${fmtTime(p.unavailable_until, false)}${left > 0 ? ` (in ${Math.ceil(left / 1000)} s)` : ''}`;
  }
  badge.textContent = st;
  $('h-state').textContent = st;
  $('h-isolation').textContent = `${p.isolation}${p.sandbox ? `, sandbox ${p.sandbox}` : ''}, ${p.threads} threads`;
  const host = p.host || {};
  $('h-pid').textContent = host.pid == null || host.pid < 0 ? (p.isolation === 'thread' && p.state === 'ready' ? 'in process' : 'none') : String(host.pid);
  $('h-generation').textContent = String(host.generation ?? p.generation ?? '–');
  $('h-uptime').textContent = p.uptime_ms == null || p.uptime_ms < 0 ? 'none' : fmtMs(p.uptime_ms);
  $('h-heartbeat').textContent = p.heartbeat_age_ms == null || p.heartbeat_age_ms < 0 ? 'none' : fmtMs(p.heartbeat_age_ms);
  $('h-inflight').textContent = `${p.in_flight ?? 0}${p.queued != null ? ` (${p.queued} queued)` : ''}`;
  const r = p.restarts || {};
  const rs = Object.entries(r).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`);
  $('h-restarts').textContent = rs.length ? rs.join(', ') : 'none';

  // Rows are kept and only their text changes: a focused call button
  // keeps its focus across the updates.
  const body = $('workers-body');
  const workers = p.workers || [];
  $('workers-none').hidden = workers.length > 0;
  while (body.rows.length > workers.length) body.lastElementChild.remove();
  workers.forEach((w, i) => {
    let row = body.rows[i];
    if (!row) {
      row = h('tr', {}, h('td', { class: 'num' }), h('td', {}, h('span')), h('td'), h('td'), h('td', { class: 'num' }));
      body.append(row);
    }
    const [idx, st, call, fn, dur] = row.cells;
    row.className = w.busy ? 'busy' : 'idle';
    setText(idx, String(w.index));
    st.firstChild.className = `pill ${w.busy ? 'busy' : 'idle'}`;
    setText(st.firstChild, w.busy ? 'busy' : 'idle');
    const callKeyNow = w.busy ? String(w.call) : '';
    if (call.dataset.shown !== callKeyNow) {
      call.dataset.shown = callKeyNow;
      call.replaceChildren(w.busy ? callRef(w.call) : '');
    }
    setText(fn, w.busy ? (w.function || '') : '');
    setText(dur, w.busy && w.busy_ms != null ? fmtMs(w.busy_ms) : '');
  });
}

// A call id as a button that shows the call, or a note for a hidden one.
function callRef(id) {
  if (!id) return h('span', { class: 'hidden-id', text: 'hidden' });
  return h('button', { type: 'button', class: 'link id', 'data-call': id, title: id, 'aria-label': `Call ${id}`, text: shortId(id) });
}

function statusText(c) {
  let s = c.state;
  if (c.status != null && TERMINAL.has(c.state)) s += ` ${c.status}`;
  if (c.type) s += ` ${c.type.replace(/^\/problems\//, '')}`;
  if (c.attempts > 1) s += ` (${c.attempts} runs)`;
  return s;
}

const rowsByKey = new Map();
function renderCalls() {
  const body = $('calls-body');
  const calls = [...state.calls.values()].sort((a, b) => cmpCreated(b, a));
  const keep = new Set();
  let prev = null;
  for (const c of calls) {
    const key = callKey(c);
    keep.add(key);
    let row = rowsByKey.get(key);
    if (!row) {
      row = h('tr', {}, h('td', {}, callRef(c.id)), h('td'), h('td'), h('td', { class: 'num' }), h('td', { class: 'num' }));
      rowsByKey.set(key, row);
    }
    const cells = row.children;
    row.className = `${c.state}${c.id && c.id === state.selected ? ' selected' : ''}`;
    setText(cells[1], c.function || '');
    setText(cells[2], statusText(c));
    setText(cells[3], c.queue_ms == null ? '' : fmtMs(c.queue_ms));
    setText(cells[4], c.run_ms == null ? (c.state === 'running' ? 'running' : '') : fmtMs(c.run_ms));
    // Moves a row only when it is out of place (moving blurs a focused button).
    const want = prev ? prev.nextSibling : body.firstChild;
    if (want !== row) body.insertBefore(row, want);
    prev = row;
  }
  for (const [key, row] of rowsByKey) if (!keep.has(key)) {
    row.remove();
    rowsByKey.delete(key);
  }
  if (state.selected) {
    const c = state.calls.get(state.selected);
    if (c) $('call-detail-status').textContent = `${c.function}: ${statusText(c)}${c.run_ms != null ? `, ran ${fmtMs(c.run_ms)}` : ''}${c.queue_ms != null ? `, queued ${fmtMs(c.queue_ms)}` : ''}`;
  }
}

function setText(e, t) {
  if (e.textContent !== t) e.textContent = t;
}

// Cards are built once per failure, so that an open backtrace stays open.
const cards = new WeakMap();
function renderFailures() {
  $('failures-none').hidden = state.failures.length > 0;
  $('failures-list').replaceChildren(...state.failures.map((f) => {
    if (!cards.has(f)) cards.set(f, failureCard(f));
    return cards.get(f);
  }));
}

function idList(ids) {
  const known = ids.filter(Boolean);
  const hidden = ids.length - known.length;
  const out = [];
  known.forEach((id, i) => out.push(i ? ', ' : '', callRef(id)));
  if (hidden) out.push(`${known.length ? ', and ' : ''}${hidden} hidden`);
  return out;
}

function failureCard(f) {
  const slug = (f.type || '').replace(/^\/problems\//, '');
  const facts = [
    ['Culprit', f.culprit ? callRef(f.culprit) : (f.function ? 'hidden' : 'none known')],
    ['Function', f.function],
    ['Worker', f.worker],
    ['Message', f.message],
    ['Signal', f.signal],
    ['System call', f.syscall],
    ['Location', f.location],
    ['Re-run', f.rerun && f.rerun.length ? idList(f.rerun) : null],
    ['Failed with it', f.failed && f.failed.length ? idList(f.failed) : null],
  ].filter(([, v]) => v !== null && v !== undefined && v !== '');
  const card = h('li', { class: 'card failure' },
    h('h3', {}, h('a', { href: f.type || '#', text: slug || f.reason || 'failure' }),
      ` · ${f.reason || ''}${f.generation != null ? ` · generation ${f.generation}` : ''} · `,
      h('time', { datetime: f.time, text: fmtTime(f.time) })),
    h('dl', { class: 'kv' }, ...facts.map(([k, v]) => h('div', {}, h('dt', { text: k }),
      h('dd', { class: k === 'Location' || k === 'Message' ? 'mono' : '' }, ...(Array.isArray(v) ? v : [v instanceof Node ? v : String(v)]))))));
  if (f.backtrace && f.backtrace.length) {
    card.append(h('details', {}, h('summary', { text: `Backtrace (${f.backtrace.length} frames)` }),
      h('pre', { class: 'mono', tabindex: '0', text: f.backtrace.join('\n') })));
  }
  if (f.logs && f.logs.length) {
    card.append(h('p', { class: 'sub', text: 'The culprit\'s last log lines' }), renderLogs(f.logs));
  }
  return card;
}

function renderRestarts() {
  $('restarts-none').hidden = state.restarts.length > 0;
  $('restarts-list').replaceChildren(...state.restarts.map((r) => h('li', {},
    h('time', { datetime: r.time, text: fmtTime(r.time) }), ` generation ${r.generation}: ${r.reason}`)));
}

function renderSeries() {
  const max = drawThroughput($('chart-throughput'), state.series);
  const [lo, hi] = drawLatency($('chart-latency'), state.series);
  const last = state.series.at(-1);
  $('tp-now').textContent = last ? `now ${last.ended}/s, scale ${max}/s` : '';
  $('lat-now').textContent = last && last.p50_ms != null
    ? `now ${fmtMs(last.p50_ms)} / ${fmtMs(last.p99_ms)}, log scale ${lo}–${hi} ms` : `log scale ${lo}–${hi} ms`;
}

// ---- the event stream ----

function onEvent(type, d) {
  switch (type) {
    case 'snapshot':
      state.pool = d.pool;
      state.calls.clear();
      for (const c of [...(d.calls || [])].reverse()) putCall(c);
      state.failures = (d.failures || []).slice(0, MAX_FAILURES);
      state.series = (d.series || []).slice(-MAX_SERIES);
      state.restarts = (d.restarts || []).slice(0, MAX_RESTARTS);
      invalidate('pool', 'calls', 'failures', 'series', 'restarts');
      break;
    case 'pool':
      state.pool = d;
      // A call may jump from queued to its end; a worker running it says
      // it runs.
      for (const w of d.workers || []) {
        const c = w.busy && w.call ? state.calls.get(w.call) : null;
        if (c && c.state === 'queued') {
          c.state = 'running';
          invalidate('calls');
        }
      }
      invalidate('pool');
      break;
    case 'call':
      putCall(d);
      pruneCalls();
      invalidate('calls');
      if (d.id && runWatch.id === d.id && TERMINAL.has(d.state)) runWatch.check();
      break;
    case 'tick':
      state.series.push(d);
      if (state.series.length > MAX_SERIES) state.series.splice(0, state.series.length - MAX_SERIES);
      invalidate('series');
      break;
    case 'failure':
      state.failures.unshift(d);
      state.failures.length = Math.min(state.failures.length, MAX_FAILURES);
      invalidate('failures');
      break;
    case 'restart':
      state.restarts.unshift(d);
      state.restarts.length = Math.min(state.restarts.length, MAX_RESTARTS);
      invalidate('restarts');
      break;
    default:
      break;
  }
}

let askingToken = false;
async function needClientToken(why) {
  if (askingToken) return false;
  askingToken = true;
  const t = await askToken(why, 'Client token');
  askingToken = false;
  if (!t) return false;
  tokens.client = t;
  $('btn-token').classList.remove('wanted');
  events.restart(true);
  return true;
}

const events = new SseStream('/v1/events', {
  headers: viewerAuth,
  onEvent,
  onStatus(st, detail) {
    const conn = $('conn');
    if (st === 'open') {
      conn.textContent = 'live';
      conn.dataset.state = 'live';
    } else if (st === 'retrying') {
      conn.textContent = `disconnected; retrying in ${fmtMs(detail)}`;
      conn.dataset.state = 'down';
    } else if (st === 'http') {
      conn.dataset.state = 'down';
      if (detail.status === 401) {
        conn.textContent = 'the service needs a client token';
        needClientToken('This service needs a client token to show its calls and events.');
        return false;
      }
      conn.textContent = `event stream refused: HTTP ${detail.status}`;
    } else {
      conn.textContent = 'disconnected';
      conn.dataset.state = 'down';
    }
    return undefined;
  },
});

// ---- the selected call and its logs ----

let logStream = null;
function selectCall(id) {
  if (logStream) logStream.stop();
  state.selected = id;
  const box = $('call-detail');
  box.hidden = false;
  $('call-detail-h').textContent = `Call ${id}`;
  const pre = $('call-logs');
  pre.replaceChildren();
  pre.dataset.state = 'streaming';
  $('call-detail-status').textContent = '';
  invalidate('calls');
  logStream = new SseStream(`/v1/calls/${encodeURIComponent(id)}/logs`, {
    headers: viewerAuth,
    onEvent(type, d) {
      if (type === 'log') {
        const stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
        pre.append(logLine(d), '\n');
        // the last MAX_LOG_LINES lines (a line is a span and a newline)
        while (pre.childNodes.length > 2 * MAX_LOG_LINES) pre.firstChild.remove();
        if (stick) pre.scrollTop = pre.scrollHeight;
      } else if (type === 'end') {
        pre.dataset.state = 'ended';
        logStream.stop();
        const t = d.timing || {};
        const c = state.calls.get(d.id);
        if (c && !TERMINAL.has(c.state)) {
          // the feed's end of the call may come a moment later
          putCall({ ...c, state: d.status, status: d.error ? d.error.status : 200, type: d.error ? d.error.type : null,
            queue_ms: t.queue_ms ?? null, run_ms: t.run_ms ?? null, attempts: d.attempts ?? c.attempts });
          invalidate('calls');
        }
        $('call-detail-status').textContent = `${d.function}: ${d.status}${d.error ? ` (${d.error.status} ${d.error.title})` : ''}`
          + `${t.run_ms != null ? `, ran ${fmtMs(t.run_ms)}` : ''}${d.logs_dropped ? `, ${d.logs_dropped} older lines dropped` : ''}`;
        if (runWatch.id === d.id) runWatch.check();
      }
    },
    onStatus(st, res) {
      if (st === 'http') {
        pre.dataset.state = 'ended';
        if (res.status === 401) needClientToken('This call needs a client token.');
        $('call-detail-status').textContent = res.status === 404 ? 'This call is gone (or not yours).' : `Logs refused: HTTP ${res.status}`;
        return false;
      }
      return undefined;
    },
  }).start();
  box.scrollIntoView({ block: 'nearest' });
}

document.addEventListener('click', (e) => {
  const b = e.target.closest('button[data-call]');
  if (b) selectCall(b.dataset.call);
});

// ---- running a call ----

let functions = [];
let readArgs = () => ({ args: {} });

async function loadFunctions() {
  const r = await request('GET', '/v1/functions');
  const sel = $('run-fn');
  if (!r.ok) {
    $('run-out').replaceChildren(renderProblem(r.body, r.status));
    return;
  }
  functions = r.body.functions || [];
  sel.replaceChildren(...functions.map((f) => h('option', { value: f.name, text: `${f.name} (${f.module})` })));
  const first = functions.find((f) => f.name === 'nqueens') || functions[0];
  if (first) sel.value = first.name;
  pickFunction();
}

function pickFunction() {
  const f = functions.find((x) => x.name === $('run-fn').value);
  if (!f) return;
  $('run-summary').textContent = f.summary || '';
  const schema = typeof f.args === 'string' ? { type: 'object', description: f.args } : f.args;
  readArgs = buildArgsForm($('run-args'), schema, f.name);
}

// The call the form started: polled when its end is heard of, and every
// second meanwhile in case the streams miss it.
const runWatch = {
  id: null,
  timer: 0,
  start(id) {
    this.stop();
    this.id = id;
    this.timer = setInterval(() => this.check(), 1000);
  },
  stop() {
    clearInterval(this.timer);
    this.id = null;
  },
  async check() {
    const id = this.id;
    if (!id) return;
    const r = await request('GET', `/v1/calls/${encodeURIComponent(id)}`, { headers: viewerAuth() });
    if (this.id !== id) return;
    if (r.ok && !TERMINAL.has(r.body.status)) return;
    this.stop();
    showOutcome(r);
  },
};

function showOutcome(r) {
  const out = $('run-out');
  $('run-submit').disabled = false;
  if (r.ok && r.body && r.body.status === 'succeeded') {
    const t = r.body.timing || {};
    out.replaceChildren(h('div', { class: 'outcome ok', id: 'run-result' },
      h('h3', { text: `${r.body.function}: succeeded` }),
      h('p', { text: `queued ${fmtMs(t.queue_ms)}, ran ${fmtMs(t.run_ms)}${r.body.attempts > 1 ? `, ${r.body.attempts} runs` : ''}` }),
      h('pre', { class: 'mono result', tabindex: '0', text: JSON.stringify(r.body.result, null, 2) }),
      r.body.logs && r.body.logs.length ? renderLogs(r.body.logs) : ''));
    return;
  }
  const problem = r.ok && r.body ? { ...r.body.error, logs: r.body.error?.logs ?? r.body.logs } : r.body;
  out.replaceChildren(h('div', { class: 'outcome bad', id: 'run-result' }, renderProblem(problem, r.status)));
}

async function runCall(e) {
  e.preventDefault();
  const out = $('run-out');
  const fn = $('run-fn').value;
  const got = readArgs();
  if (got.error) {
    out.replaceChildren(h('p', { class: 'outcome bad', role: 'alert', text: got.error }));
    got.field.focus();
    return;
  }
  const body = { function: fn, args: got.args };
  const tmo = $('run-timeout').value.trim();
  if (tmo) body.timeout_ms = Number(tmo);
  $('run-submit').disabled = true;
  out.replaceChildren(h('p', { class: 'hint', text: `Starting ${fn}…` }));
  let r;
  for (let attempt = 0; ; attempt++) {
    r = await request('POST', '/v1/calls?async=1', { body, headers: { Prefer: 'respond-async', ...viewerAuth() } });
    if (r.status === 401 && attempt === 0 && await needClientToken('Running a call needs a client token.')) continue;
    break;
  }
  if (r.status === 202 && r.body && r.body.id) {
    $('run-submit').disabled = false; // accepted: another call may start
    out.replaceChildren(h('p', { class: 'hint' }, `Running ${fn} as `, callRef(r.body.id), '; its logs stream below under Calls.'));
    runWatch.start(r.body.id);
    selectCall(r.body.id);
    return;
  }
  showOutcome(r);
}

// ---- admin actions ----

let noticeTimer = 0;
function notify(text, keep = false) {
  $('notice').textContent = text;
  clearTimeout(noticeTimer);
  if (!keep) noticeTimer = setTimeout(() => { $('notice').textContent = ''; }, 15000);
}

async function adminAction(action) {
  const what = action === 'restart'
    ? 'Restart the pool host: its calls in flight run again on the next host.'
    : 'Stop the pool host: its queued and running calls fail; the next call starts a new host.';
  const t = await askToken(`${what} This needs the admin token.`, 'Admin token', tokens.admin);
  if (!t) return;
  const changed = t !== tokens.admin;
  tokens.admin = t;
  notify(`${action === 'restart' ? 'Restarting' : 'Stopping'} the host…`, true);
  const r = await request('POST', `/v1/pool/${action}`, { headers: adminAuth() });
  if (r.ok) {
    notify(`Done: ${action}; the host is ${r.body.pool ? r.body.pool.state : 'changing'}.`);
    if (changed && !tokens.client) events.restart(true); // the admin sees every call's id
  } else {
    if (r.status === 401) tokens.admin = '';
    notify(`${action} refused: ${r.status} ${(r.body && (r.body.detail || r.body.title)) || ''}`);
  }
}

// ---- start ----

$('run-fn').addEventListener('change', pickFunction);
$('run-form').addEventListener('submit', runCall);
$('btn-restart').addEventListener('click', () => adminAction('restart'));
$('btn-stop').addEventListener('click', () => adminAction('stop'));
$('btn-token').addEventListener('click', () => needClientToken('Calls and events of a client are visible with its token.'));
setInterval(() => {
  if (state.pool && state.pool.state === 'unavailable') invalidate('pool');
}, 1000);
// With client tokens, call routes answer 401 without one: ask at once
// (the event stream is open to all, but shows only the viewer's ids).
async function probeTokens() {
  // An empty batch: 200 and nothing run when the service has no client
  // tokens (or this one is good), 401 when it wants one.
  const r = await request('POST', '/v1/batch', { body: { calls: [] }, headers: viewerAuth() });
  if (r.status === 401 && !tokens.client) {
    $('btn-token').classList.add('wanted');
    await needClientToken('This service uses client tokens: give yours to run calls and to see them.');
  }
}

renderSeries();
events.start();
loadFunctions().then(probeTokens);
