// Two small charts of the last 5 minutes, drawn as SVG through the DOM:
// calls ended per second (ok and failed, stacked) and latency (p50, p99).
// One x unit per second; the SVG stretches to its box.

const NS = 'http://www.w3.org/2000/svg';
const SPAN = 300; // seconds shown
const H = 100;

function el(name, attrs) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

// A round upper bound at or above v (1, 2, 5 times a power of ten).
function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

// The chart's box, its title and grid lines (at halves, or at n lines).
function frame(box, label, lines = 2) {
  const svg = el('svg', { viewBox: `0 0 ${SPAN} ${H}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': label });
  svg.append(el('title', {}));
  svg.firstChild.textContent = label;
  for (let i = 0; i < lines; i++) {
    const y = (i * H) / lines;
    svg.append(el('line', { x1: 0, x2: SPAN, y1: y, y2: y, class: 'grid' }));
  }
  svg.append(el('line', { x1: 0, x2: SPAN, y1: H, y2: H, class: 'axis' }));
  box.replaceChildren(svg);
  return svg;
}

// ticks: oldest first. Returns the top of the scale.
export function drawThroughput(box, ticks) {
  const t = ticks.slice(-SPAN);
  const off = SPAN - t.length;
  const max = niceMax(Math.max(0, ...t.map((k) => (k.ok || 0) + (k.failed || 0))));
  const last = t.at(-1);
  const total = t.reduce((s, k) => s + (k.ended || 0), 0);
  const svg = frame(box, `Calls ended per second over the last ${t.length} s: ${total} in all, scale 0 to ${max} per second; now ${last ? last.ended : 0}.`);
  let ok = '';
  let bad = '';
  t.forEach((k, i) => {
    const x = off + i;
    const hOk = ((k.ok || 0) / max) * H;
    const hBad = ((k.failed || 0) / max) * H;
    if (hOk > 0) ok += `M${x} ${H}v${-hOk}h1v${hOk}z`;
    if (hBad > 0) bad += `M${x} ${H - hOk}v${-hBad}h1v${hBad}z`;
  });
  if (ok) svg.append(el('path', { d: ok, class: 'bar-ok' }));
  if (bad) svg.append(el('path', { d: bad, class: 'bar-bad' }));
  return max;
}

// Latency on a log scale (whole decades), so that a slow call does not
// flatten the rest. Returns [low, high] in ms.
export function drawLatency(box, ticks) {
  const t = ticks.slice(-SPAN);
  const off = SPAN - t.length;
  const vals = t.flatMap((k) => [k.p50_ms, k.p99_ms]).filter((v) => v != null && v > 0);
  let lo = 10 ** Math.floor(Math.log10(vals.length ? Math.min(...vals) : 0.1));
  let hi = 10 ** Math.ceil(Math.log10(vals.length ? Math.max(...vals) : 10));
  lo = Math.max(lo, 0.001);
  if (hi <= lo) hi = lo * 10;
  const span = Math.log10(hi / lo);
  const y = (v) => (H - (Math.log10(Math.min(Math.max(v, lo), hi) / lo) / span) * H).toFixed(2);
  const worst = vals.length ? Math.max(...t.map((k) => k.p99_ms ?? 0)) : 0;
  const svg = frame(box, vals.length
    ? `Latency over the last ${t.length} s, log scale ${lo} to ${hi} ms; highest p99 ${worst.toFixed(1)} ms.`
    : `Latency over the last ${t.length} s: no call ended.`, span);
  for (const [key, cls] of [['p99_ms', 'line-p99'], ['p50_ms', 'line-p50']]) {
    let d = '';
    let pen = false;
    t.forEach((k, i) => {
      const v = k[key];
      if (v == null) {
        pen = false;
        return;
      }
      d += `${pen ? 'L' : 'M'}${off + i + 0.5} ${y(v)}`;
      if (!pen) d += 'h0.01'; // a lone point still shows
      pen = true;
    });
    if (d) svg.append(el('path', { d, class: cls, 'vector-effect': 'non-scaling-stroke' }));
  }
  return [lo, hi];
}
