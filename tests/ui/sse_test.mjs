// The page's Server-Sent Events reader (server/http/ui/sse.js) in Node,
// against a small server: fields, comments, CR/LF/CRLF line ends split
// anywhere across chunks, multi-line data, retry:, Last-Event-ID on
// reconnect, the Authorization header, 204 stopping it, and a refused
// stream reported to the caller. No browser needed.
//
//   node tests/ui/sse_test.mjs
import fs from 'node:fs';
import http from 'node:http';

// Imported from its text: a .js file outside a "type": "module" package is
// CommonJS to Node 18, and the page's modules are ES modules.
const source = fs.readFileSync(new URL('../../server/http/ui/sse.js', import.meta.url), 'utf8');
const { SseStream } = await import(`data:text/javascript,${encodeURIComponent(source)}`);

let passed = 0;
let failed = 0;
function check(ok, what, detail = '') {
  if (ok) passed++;
  else failed++;
  console.log(`${ok ? 'ok' : 'not ok'} - ${what}${ok || !detail ? '' : `: ${detail}`}`);
}

const seen = []; // requests: { url, lastId, auth }
let step = 0;
const server = http.createServer((req, res) => {
  seen.push({ url: req.url, lastId: req.headers['last-event-id'] ?? null, auth: req.headers.authorization ?? null });
  if (req.url === '/refused') {
    res.writeHead(401, { 'Content-Type': 'application/problem+json' });
    res.end('{}');
    return;
  }
  step++;
  if (step === 1) {
    res.writeHead(200, { 'Content-Type': 'text/event-stream' });
    // every line-end kind, a comment, a field without a space, two data
    // lines, an event without id, sent in awkward pieces (a CRLF split)
    const text = 'retry: 50\r\n\r\n: hello\nid: 1\nevent: snapshot\ndata: {"a":1}\n\n'
      + 'id: 2\revent: pool\rdata:{"b":2}\r\r'
      + 'event: note\r\ndata: line one\r\ndata: line two\r\n\r\n'
      + 'id: 3\r\nevent: tick\r\ndata: {"c":3}\r\n\r\n';
    const crlf = text.indexOf('\r\n', 100); // a CRLF split between two chunks
    const cuts = [5, 17, 40, 41, 70, 88, 89, crlf + 1, text.length - 1].sort((a, b) => a - b);
    let at = 0;
    const send = () => {
      const next = cuts.shift() ?? text.length;
      res.write(text.slice(at, next));
      at = next;
      if (at < text.length) setTimeout(send, 5);
      else setTimeout(() => res.end(), 5); // the server goes away
    };
    send();
  } else if (step === 2) {
    res.writeHead(200, { 'Content-Type': 'text/event-stream' });
    res.end('id: 4\nevent: tick\ndata: {"d":4}\n\n');
  } else {
    res.writeHead(204);
    res.end();
  }
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const base = `http://127.0.0.1:${server.address().port}`;

const events = [];
const statuses = [];
await new Promise((resolve) => {
  const s = new SseStream(`${base}/events`, {
    headers: () => ({ Authorization: 'Bearer t0k' }),
    onEvent: (type, data, id) => events.push([type, data, id]),
    onStatus: (st) => {
      statuses.push(st);
      if (st === 'closed') resolve();
    },
  });
  s.start();
  setTimeout(resolve, 5000);
});

check(JSON.stringify(events.map((e) => e[0])) === JSON.stringify(['snapshot', 'pool', 'note', 'tick', 'tick']), 'event types in order', JSON.stringify(events));
check(events[0] && events[0][1].a === 1 && events[0][2] === '1', 'JSON data and id of the first event');
check(events[1] && events[1][1].b === 2 && events[1][2] === '2', 'CR line ends and a field without a space');
check(events[2] && events[2][1] === 'line one\nline two' && events[2][2] === '2', 'two data lines join with a newline; no id keeps the last');
check(events[4] && events[4][1].d === 4, 'the event after a reconnect');
check(seen.length === 3, 'reconnects after the stream ends, stops at 204', JSON.stringify(seen));
check(seen[1] && seen[1].lastId === '3' && seen[2] && seen[2].lastId === '4', 'Last-Event-ID is sent on reconnect', JSON.stringify(seen));
check(seen.every((r) => r.auth === 'Bearer t0k'), 'the Authorization header goes on every request');
check(statuses.includes('retrying') && statuses.at(-1) === 'closed', 'status: retrying, then closed', statuses.join(','));

let refused = null;
await new Promise((resolve) => {
  new SseStream(`${base}/refused`, {
    onEvent: () => {},
    onStatus: (st, res) => {
      if (st === 'http') {
        refused = res.status;
        resolve();
        return false;
      }
      return undefined;
    },
  }).start();
  setTimeout(resolve, 2000);
});
check(refused === 401, 'a refused stream is reported with its status');
check(seen.filter((r) => r.url === '/refused').length === 1, 'a 401 is not retried');

server.close();
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
