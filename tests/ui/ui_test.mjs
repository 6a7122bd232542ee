// The status page in a real browser (issue #12): Debian's Chromium,
// headless, driven by puppeteer-core, against a live poolhost with fault
// injection. Usage:
//
//   node tests/ui/ui_test.mjs POOLHOST_BIN OUT_DIR [--firefox]
//
// POOLHOST_UI_NODE_DIR names the directory whose node_modules holds
// puppeteer-core and axe-core (npm ci of tests/ui/package.json; default
// OUT_DIR/../../ui-node); CHROMIUM the browser (default /usr/bin/chromium).
// --firefox drives Firefox (FIREFOX, default /usr/bin/firefox-esr) over
// WebDriver BiDi instead. Screenshots of each state go to OUT_DIR,
// screenshot.png among them (the README's).
// Exits non-zero when any check fails.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const args = process.argv.slice(2);
const firefox = args.includes('--firefox');
const [binArg, outArg] = args.filter((a) => !a.startsWith('--'));
if (!binArg || !outArg) {
  console.error('usage: ui_test.mjs POOLHOST_BIN OUT_DIR [--firefox]');
  process.exit(2);
}
const bin = path.resolve(binArg);
const out = path.resolve(outArg);
fs.mkdirSync(out, { recursive: true });
const nodeDir = path.resolve(process.env.POOLHOST_UI_NODE_DIR || path.join(out, '..', '..', 'ui-node'));
const require = createRequire(path.join(nodeDir, 'package.json'));
let puppeteer;
let axeSource;
try {
  puppeteer = require('puppeteer-core');
  axeSource = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
} catch (e) {
  console.error(`puppeteer-core or axe-core not found under ${nodeDir}/node_modules (npm ci there from tests/ui): ${e.message}`);
  process.exit(1);
}
const browserPath = firefox
  ? process.env.FIREFOX || ['/usr/bin/firefox-esr', '/usr/bin/firefox'].find((p) => fs.existsSync(p))
  : process.env.CHROMIUM || ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].find((p) => fs.existsSync(p));
if (!browserPath) {
  console.error(firefox ? 'no Firefox (apt-get install firefox-esr, or set FIREFOX)' : 'no Chromium (apt-get install chromium, or set CHROMIUM)');
  process.exit(1);
}
const prefix = firefox ? 'firefox-' : '';
const FAILURE_BUDGET_MS = Number(process.env.UI_FAILURE_BUDGET_MS || 1000);

let passed = 0;
let failed = 0;
let stage = 'start'; // what the browser was doing, for the report of a stray request
function check(ok, what, detail = '') {
  stage = `after "${what}"`;
  if (ok) {
    passed++;
    console.log(`ok - ${what}`);
  } else {
    failed++;
    console.log(`not ok - ${what}${detail ? `: ${detail}` : ''}`);
  }
  return ok;
}

// ---- the service ----

const adminToken = crypto.randomBytes(16).toString('hex');
const servers = [];
let stopping = false;
process.on('exit', () => servers.forEach((p) => p.kill('SIGKILL')));

// Starts poolhost on a free port; resolves to the port.
async function startServer(name, extra = []) {
  const proc = spawn(bin, ['--listen', '127.0.0.1:0', '--enable-fault-injection', '--threads', '2',
    '--heartbeat-timeout-ms', '3000', '--log-level', 'info', ...extra], {
    env: { ...process.env, POOLHOST_ADMIN_TOKEN: adminToken },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  servers.push(proc);
  const log = fs.createWriteStream(path.join(out, `${prefix}${name}.log`));
  const port = await new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error('no `listening` line within 10 s')), 10000);
    const onData = (d) => {
      log.write(d);
      buf += d;
      const m = /\blistening\b.*\bport=(\d+)/.exec(buf);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.on('exit', (code) => reject(new Error(`poolhost exited (${code}) before listening`)));
  });
  proc.on('exit', (code, sig) => {
    if (!stopping) check(false, `poolhost (${name}) keeps running`, `exited ${code ?? sig}`);
  });
  return port;
}

const port = await startServer('poolhost').catch((e) => {
  console.error(e.message);
  process.exit(1);
});

const base = `http://127.0.0.1:${port}`;
const origin = new URL(base).origin;

// Background load, so that the charts and the calls table have something.
let loading = true;
let paused = false;
const loader = (async () => {
  const fns = [['nqueens', { n: 9 }], ['sum_squares', { n: 100000 }], ['fib', { n: 24 }], ['log', { lines: 3 }]];
  for (let i = 0; loading; i++) {
    const [f, a] = fns[i % fns.length];
    if (!paused) {
      try {
        await fetch(`${base}/v1/calls`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ function: f, args: a }) });
      } catch {
        // the service may be restarting
      }
    }
    await new Promise((r) => setTimeout(r, 150 + (i % 5) * 60));
  }
})();

// ---- plain HTTP checks ----

{
  const r = await fetch(`${base}/`, { headers: { Accept: 'application/json' } });
  const j = await r.json().catch(() => null);
  check(r.ok && j && j.name === 'poolhost' && Array.isArray(j.routes), 'GET / with Accept: application/json is the JSON index');
  const h = await fetch(`${base}/`, { headers: { Accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' } });
  const text = await h.text();
  check(h.ok && /^text\/html/.test(h.headers.get('content-type') || '') && text.includes('/ui/app.js'), 'GET / with Accept: text/html is the page');
  check(/default-src 'self'/.test(h.headers.get('content-security-policy') || ''), "the page has Content-Security-Policy: default-src 'self'",
    h.headers.get('content-security-policy') || 'none');
  check(!/<script(?![^>]*\bsrc=)[^>]*>|\sstyle=|<style|\son[a-z]+=/i.test(text), 'index.html has no inline script, style or handler');
  for (const name of ['app.js', 'style.css']) {
    const a = await fetch(`${base}/ui/${name}`);
    check(a.ok && /default-src 'self'/.test(a.headers.get('content-security-policy') || '') && a.headers.get('etag'),
      `/ui/${name} is served with CSP and an ETag`, `${a.status} etag=${a.headers.get('etag')}`);
  }
}

// ---- the browser ----

const browser = await puppeteer.launch(firefox
  ? { browser: 'firefox', executablePath: browserPath, headless: true }
  : {
    executablePath: browserPath,
    headless: true,
    args: [...(process.getuid && process.getuid() === 0 ? ['--no-sandbox'] : []), '--disable-gpu', '--disable-dev-shm-usage',
      '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
console.log(`# ${await browser.version()}`);
const page = await browser.newPage();
await page.setViewport({ width: 1400, height: 1000 });
const consoleErrors = [];
const foreign = [];
page.on('console', (m) => {
  if (m.type() === 'error' || m.type() === 'assert') consoleErrors.push(m.text());
});
page.on('pageerror', (e) => consoleErrors.push(`page error: ${e.message}`));
// Firefox's own stylesheet (html.css) draws list and <details> markers
// with a data: font, -moz-bullet-font: the browser's request, not the page's.
const MOZ_BULLET_FONT = 'data:font/woff2;base64,d09GMgABAAAAAAScAAsAAAAACfAAAARNAAEAA';
page.on('request', (r) => {
  const u = r.url();
  if (firefox && u.startsWith(MOZ_BULLET_FONT)) return;
  if (/^(data|blob|about):/.test(u)) {
    if (!u.startsWith('about:')) foreign.push(`${u.slice(0, 60)} (during: ${stage})`);
    return;
  }
  if (new URL(u).origin !== origin) foreign.push(u);
});

async function shot(name) {
  await page.screenshot({ path: path.join(out, `${prefix}${name}.png`), fullPage: true });
}

async function waitFor(what, fn, arg, timeout = 5000) {
  try {
    await page.waitForFunction(fn, { timeout, polling: 50 }, arg);
    return check(true, what);
  } catch {
    return check(false, what, `not within ${timeout} ms`);
  }
}

async function axe(state) {
  await page.evaluate(axeSource); // through DevTools, not a script tag: the CSP stays on
  const res = await page.evaluate(async () => {
    const r = await globalThis.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 3) }));
  });
  const bad = res.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  check(bad.length === 0, `axe-core: no serious or critical violation (${state})`, JSON.stringify(bad));
  for (const v of res.filter((x) => !bad.includes(x))) console.log(`# axe ${v.impact}: ${v.id} ${v.nodes.join(', ')}`);
}

async function runForm(fn, values, beforeClick = () => {}) {
  await page.select('#run-fn', fn);
  for (const [name, v] of Object.entries(values)) {
    const sel = `#arg-${name}`;
    const tag = await page.$eval(sel, (e) => `${e.tagName}:${e.type}`);
    if (tag === 'SELECT:select-one') await page.select(sel, JSON.stringify(v));
    else if (tag === 'INPUT:checkbox') {
      if (await page.$eval(sel, (e) => e.checked) !== v) await page.click(sel);
    } else {
      await page.$eval(sel, (e) => {
        e.value = '';
      });
      await page.type(sel, String(v));
    }
  }
  beforeClick();
  await page.click('#run-submit');
}

try {
  const res = await page.goto(`${base}/`, { waitUntil: 'domcontentloaded' });
  check(res && res.ok(), 'the browser loads the page');
  await waitFor('the event stream is live', () => document.getElementById('conn').textContent === 'live');
  await waitFor('the host is shown (state, pid, generation, uptime, heartbeat)', () => {
    const t = (id) => document.getElementById(id).textContent;
    return t('h-state') === 'ready' && /^\d+$/.test(t('h-pid')) && /^\d+$/.test(t('h-generation')) && t('h-uptime') !== '–' && t('h-heartbeat') !== '–';
  });
  await waitFor('two workers are listed', () => document.querySelectorAll('#workers-body tr').length === 2);
  // "live": the heartbeat age changes without a reload, within a second or so
  const hb0 = await page.$eval('#h-uptime', (e) => e.textContent);
  await waitFor('the host view updates within 1.5 s', (v) => document.getElementById('h-uptime').textContent !== v, hb0, 1500);
  await waitFor('functions fill the form', () => document.querySelectorAll('#run-fn option').length >= 7);
  const schemaOk = await page.evaluate(() => {
    const n = document.getElementById('arg-n');
    return n && n.type === 'number' && n.min !== '' && n.max !== '';
  });
  check(schemaOk, 'nqueens: n is a number field with its range from the schema');
  await waitFor('the throughput chart draws ticks', () => document.querySelector('#chart-throughput svg path'), undefined, 6000);
  await shot('01-loaded');
  await axe('loaded');

  // nqueens from the form
  await runForm('nqueens', { n: 8 });
  await waitFor('nqueens(8) from the form shows its result (92)', () => {
    const r = document.getElementById('run-result');
    return r && r.classList.contains('ok') && /"count":\s*92/.test(r.textContent);
  });
  await shot('02-nqueens');

  // a slow call: its worker busy, its logs streaming while it runs
  const fns = await (await fetch(`${base}/v1/functions`)).json();
  const logFn = fns.functions.find((f) => f.name === 'log');
  const slowLog = logFn && logFn.args && logFn.args.properties && logFn.args.properties.ms;
  const slow = slowLog ? ['log', { lines: 8, ms: 4000 }] : ['sleep', { ms: 4000 }];
  await runForm(slow[0], slow[1]);
  await waitFor(`${slow[0]}: a worker shows busy with it`, (fn) => [...document.querySelectorAll('#workers-body tr.busy')]
    .some((tr) => tr.children[3].textContent === fn), slow[0], 3000);
  await waitFor(`${slow[0]}: its log lines stream while it runs`, () => {
    const pre = document.getElementById('call-logs');
    return pre.dataset.state === 'streaming' && pre.querySelectorAll('.log').length > 0;
  }, undefined, 3000);
  await waitFor(`${slow[0]}: the calls table lists it as queued or running`, (fn) => [...document.querySelectorAll('#calls-body tr')]
    .some((tr) => (tr.classList.contains('running') || tr.classList.contains('queued')) && tr.children[1].textContent === fn), slow[0], 2000);
  await shot('03-slow-call');
  await waitFor(`${slow[0]}: it ends and shows its result`, () => {
    const r = document.getElementById('run-result');
    return r && r.classList.contains('ok');
  }, undefined, 8000);

  // a panic: the failure card within a second
  const cards0 = await page.$$eval('#failures-list li', (l) => l.length);
  const message = `ui test panic ${Date.now() % 100000}`;
  // The card's age when it first shows: from the failure's time (the
  // server's clock, the same machine's) to the page drawing it.
  await page.evaluate(([n, msg]) => {
    window.cardSeen = new Promise((resolve) => {
      const look = () => {
        const li = document.querySelectorAll('#failures-list li');
        if (li.length > n && li[0].textContent.includes(msg) && /mod_faults\.c:\d+/.test(li[0].textContent)) {
          obs.disconnect();
          resolve(Date.now() - Date.parse(li[0].querySelector('time').getAttribute('datetime')));
        }
      };
      const obs = new MutationObserver(look);
      obs.observe(document.getElementById('failures-list'), { childList: true, subtree: true, characterData: true });
      look();
    });
  }, [cards0, message]);
  let t0 = 0;
  await runForm('panic', { message }, () => {
    t0 = Date.now();
  });
  const cardOk = await waitFor('panic: its failure card shows the message and location', ([n, msg]) => {
    const li = document.querySelectorAll('#failures-list li');
    return li.length > n && li[0].textContent.includes(msg) && /mod_faults\.c:\d+/.test(li[0].textContent);
  }, [cards0, message], 5000);
  const took = Date.now() - t0;
  if (cardOk) {
    const age = await page.evaluate(() => window.cardSeen);
    check(age <= FAILURE_BUDGET_MS, `panic: the card shows within ${FAILURE_BUDGET_MS} ms of the failure`, `${age} ms`);
    console.log(`# failure card ${age} ms after the failure, ${took} ms after the click`);
  }
  await waitFor('panic: the form shows the problem (worker-panicked) with its location', () => {
    const r = document.getElementById('run-result');
    return r && r.classList.contains('bad') && r.textContent.includes('worker-panicked') && /mod_faults\.c:\d+/.test(r.textContent);
  }, undefined, 3000);
  const card = await page.$eval('#failures-list li', (li) => li.textContent);
  check(/worker-panicked/.test(card) && /Worker/.test(card) && /Backtrace/.test(card), 'the failure card names the problem type, worker and backtrace', card.slice(0, 200));
  await page.evaluate(() => document.getElementById('failures').scrollIntoView());
  await shot('04-failure');
  await axe('after a failure');
  if (!firefox) { // (media emulation is DevTools-only in this puppeteer)
    await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'dark' }]);
    await shot('04-failure-dark');
    await axe('after a failure, dark scheme');
    await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'light' }]);
  }

  // an admin restart through the token dialog
  await page.click('#btn-restart');
  await waitFor('restart asks for the admin token', () => document.getElementById('token-dialog').open, undefined, 2000);
  await shot('05-token-dialog');
  await axe('token dialog');
  await page.type('#token-input', adminToken);
  await page.click('#token-ok');
  await waitFor('the restart is done and listed in the history', () => /Done: restart/.test(document.getElementById('notice').textContent)
    && document.querySelectorAll('#restarts-list li').length > 0 && /admin/.test(document.getElementById('restarts-list').textContent), undefined, 5000);

  // stop, with the admin token the page already has (the background
  // calls pause: a call starts a stopped host)
  paused = true;
  await page.click('#btn-stop');
  await waitFor('stop asks again, with the token filled in', (t) => document.getElementById('token-dialog').open
    && document.getElementById('token-input').value === t, adminToken, 2000);
  await page.click('#token-ok');
  await waitFor('the host shows as stopped', () => document.getElementById('h-state').textContent === 'stopped'
    && document.getElementById('h-pid').textContent === 'none', undefined, 5000);
  paused = false;

  // the README's picture: the admin's view (every id), a failure with its
  // culprit's logs, a worker busy with a call whose logs stream
  const cards1 = await page.$$eval('#failures-list li', (l) => l.length);
  await runForm('panic', { message: 'invariant broken' });
  await waitFor('panic as the admin: the card names the culprit and shows its logs', (n) => {
    const li = document.querySelectorAll('#failures-list li');
    return li.length > n && li[0].querySelector('button[data-call]') && li[0].querySelector('.logs');
  }, cards1, 5000);
  await runForm('sleep', { ms: 6000 });
  await waitFor('sleep as the admin: its worker shows the call id', () => [...document.querySelectorAll('#workers-body tr.busy')]
    .some((tr) => tr.querySelector('button[data-call]')), undefined, 3000);
  await new Promise((r) => setTimeout(r, 1200));
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(out, `${prefix}screenshot.png`), fullPage: false });
  await shot('06-admin-view');

  // client tokens: the stream answers 401, the page asks for a token and
  // sends it on the call routes and the stream
  {
    const clientToken = crypto.randomBytes(16).toString('hex');
    const tokenFile = path.join(out, 'client-tokens');
    fs.writeFileSync(tokenFile, `ui:${clientToken}\n`, { mode: 0o600 });
    fs.chmodSync(tokenFile, 0o600);
    const port2 = await startServer('poolhost-tokens', ['--api-token-file', tokenFile]);
    const base2 = `http://127.0.0.1:${port2}`;
    const page2 = await browser.newPage();
    page2.on('console', (m) => {
      // the 401 the page answers by asking for a token is the browser's
      // own message, not the page's error
      if ((m.type() === 'error') && !/401/.test(m.text())) consoleErrors.push(`(tokens) ${m.text()}`);
    });
    page2.on('pageerror', (e) => consoleErrors.push(`(tokens) page error: ${e.message}`));
    page2.on('request', (r) => {
      const u = r.url();
      if (/^https?:/.test(u) && new URL(u).origin !== new URL(base2).origin) foreign.push(u);
    });
    await page2.goto(`${base2}/`, { waitUntil: 'domcontentloaded' });
    const w2 = async (what, fn, arg, timeout = 5000) => {
      try {
        await page2.waitForFunction(fn, { timeout, polling: 50 }, arg);
        return check(true, what);
      } catch {
        return check(false, what, `not within ${timeout} ms`);
      }
    };
    await w2('client tokens: the page asks for a token', () => document.getElementById('token-dialog').open);
    await page2.type('#token-input', clientToken);
    await page2.click('#token-ok');
    await w2('client tokens: with the token the stream is live', () => document.getElementById('conn').textContent === 'live');
    await page2.select('#run-fn', 'nqueens');
    await page2.$eval('#arg-n', (e) => {
      e.value = '6';
    });
    await page2.click('#run-submit');
    await w2('client tokens: nqueens(6) runs with the token (4)', () => {
      const r = document.getElementById('run-result');
      return r && r.classList.contains('ok') && /"count":\s*4\b/.test(r.textContent);
    });
    await w2('client tokens: the client sees its own call\'s id in the table', () => document.querySelector('#calls-body button[data-call]'), undefined, 3000);
    await page2.screenshot({ path: path.join(out, `${prefix}07-client-token.png`), fullPage: true });
    await page2.close();
  }

  check(consoleErrors.length === 0, 'no console errors', consoleErrors.join(' | '));
  check(foreign.length === 0, 'no request to another origin', foreign.join(' '));
} catch (e) {
  check(false, 'the browser session ran to its end', e.stack);
  await shot('99-error').catch(() => {});
} finally {
  loading = false;
  await loader;
  await browser.close().catch(() => {});
  stopping = true;
  servers.forEach((p) => p.kill('SIGTERM'));
}
console.log(`screenshots in ${out}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
