// Small DOM and formatting helpers shared by the page's modules.

// h('p', { class: 'x', text: 'hi' }, child...): an element; a prop that
// the element has as a property (and is not a string) is set as one,
// anything else as an attribute; null, undefined and false are left out.
export function h(tag, props = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') e.textContent = v;
    else if (k in e && typeof v !== 'string') e[k] = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  e.append(...kids.filter((k) => k !== null && k !== undefined && k !== ''));
  return e;
}

export function fmtMs(ms) {
  if (ms == null || Number.isNaN(ms)) return '–';
  if (ms === 0) return '0 ms';
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.floor(s % 60)} s`;
  const hr = Math.floor(m / 60);
  if (hr < 48) return `${hr} h ${m % 60} min`;
  return `${Math.floor(hr / 24)} d ${hr % 24} h`;
}

// Local wall-clock time of an RFC 3339 string (or epoch ms), to the
// millisecond or the second.
export function fmtTime(t, ms = true) {
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return String(t ?? '');
  const p = (n, w = 2) => String(n).padStart(w, '0');
  const s = `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  return ms ? `${s}.${p(d.getMilliseconds(), 3)}` : s;
}

export function shortId(id) {
  return id ? id.slice(0, 8) : '';
}

// One log line as a span: time, worker, level, message (and the run when
// it was a re-run).
export function logLine(l) {
  const when = fmtTime(l.ts ?? l.time);
  const run = l.attempt > 1 ? ` run ${l.attempt}` : '';
  return h('span', { class: `log ${l.level || 'info'}` },
    `${when} [w${l.worker ?? '?'}${run}] `, h('b', { text: (l.level || '').padEnd(5) }), ` ${l.message}`);
}

export function renderLogs(lines) {
  const pre = h('pre', { class: 'logs', tabindex: '0' });
  pre.setAttribute('aria-label', 'Log lines');
  for (const l of lines) pre.append(logLine(l), '\n');
  return pre;
}

// A problem+json body: title and status, detail, cause, backtrace, logs.
export function renderProblem(p, status) {
  if (!p) return h('p', { text: `HTTP ${status}` });
  const box = h('div', { class: 'problem' });
  const slug = (p.type || '').replace(/^\/problems\//, '');
  box.append(h('h3', {}, `${p.status ?? status} `, p.type ? h('a', { href: p.type, text: slug }) : '', p.title ? `: ${p.title}` : ''));
  if (p.detail) box.append(h('p', { class: 'detail', text: p.detail }));
  const c = p.cause;
  if (c) {
    const rows = [['Kind', c.kind], ['Worker', c.worker], ['Message', c.message], ['Signal', c.signal],
      ['System call', c.syscall], ['Location', c.location], ['Culprit', c.culprit]]
      .filter(([, v]) => v !== null && v !== undefined && v !== '');
    box.append(h('dl', { class: 'kv' }, ...rows.map(([k, v]) => h('div', {}, h('dt', { text: k }), h('dd', { class: 'mono', text: String(v) })))));
    if (c.backtrace && c.backtrace.length) {
      box.append(h('details', {}, h('summary', { text: `Backtrace (${c.backtrace.length} frames)` }),
        h('pre', { class: 'mono', tabindex: '0', text: c.backtrace.join('\n') })));
    }
  }
  if (p.logs && p.logs.length) box.append(h('p', { class: 'sub', text: 'Logs' }), renderLogs(p.logs));
  return box;
}
