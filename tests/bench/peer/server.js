'use strict';
// The benchmark's peer: a Node.js service on the http module with a piscina
// pool of one worker thread per CPU, serving the part of poolhost's contract
// the HTTP benchmark uses: POST /v1/calls and POST /v1/batch for the
// functions of worker.js, answers shaped like poolhost's (id, status, logs,
// timing, result; errors as problem+json). It exists to be measured against
// (tests/bench/http_bench.sh): it is not part of the build or the tests.
//
//   NODE_PATH=DIR/node_modules node server.js [--listen HOST:PORT] [--threads N]
//
// Prints "piscina peer listening on HOST:PORT" on stderr once it accepts
// connections (port 0 picks a free port). SIGTERM or SIGINT stops it.
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { randomUUID } = require('node:crypto');
const { performance } = require('node:perf_hooks');
const { Piscina } = require('piscina');
const { functionNames } = require('./worker.js');

const MAX_BODY_BYTES = 1 << 20;
const MAX_BATCH_CALLS = 1000;

function parseFlags(argv) {
  const flags = { host: '127.0.0.1', port: 0, threads: os.availableParallelism() };
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1];
    if (argv[i] === '--listen' && value !== undefined) {
      const colon = value.lastIndexOf(':');
      flags.host = value.slice(0, colon);
      flags.port = Number(value.slice(colon + 1));
      i++;
    } else if (argv[i] === '--threads' && value !== undefined) {
      flags.threads = Number(value);
      i++;
    } else {
      console.error(`usage: server.js [--listen HOST:PORT] [--threads N] (not ${argv[i]})`);
      process.exit(2);
    }
  }
  if (!Number.isInteger(flags.port) || !Number.isInteger(flags.threads) || flags.threads < 1) {
    console.error('server.js: --listen needs HOST:PORT and --threads a positive integer');
    process.exit(2);
  }
  return flags;
}

const flags = parseFlags(process.argv.slice(2));
const pool = new Piscina({
  filename: path.join(__dirname, 'worker.js'),
  minThreads: flags.threads,
  maxThreads: flags.threads,
  idleTimeout: Infinity,
});

class Problem extends Error {
  constructor(status, slug, title, detail) {
    super(detail);
    this.body = { type: `/problems/${slug}`, title, status, detail };
  }
}

const malformed = (detail) => new Problem(400, 'malformed-request', 'Malformed request', detail);

// A call's checked shape: {function, args}; throws Problem when the JSON is
// not a call or names an unknown function.
function checkCall(call) {
  if (call === null || typeof call !== 'object' || Array.isArray(call)) {
    throw malformed('a call is a JSON object');
  }
  if (typeof call.function !== 'string') throw malformed('"function" must be a string');
  const args = call.args === undefined ? {} : call.args;
  if (args === null || typeof args !== 'object' || Array.isArray(args)) {
    throw malformed('"args" must be a JSON object');
  }
  if (!functionNames.includes(call.function)) {
    const p = new Problem(404, 'unknown-function', 'Unknown function',
      `no function named "${call.function}"`);
    p.body.function = call.function;
    throw p;
  }
  return { function: call.function, args };
}

// Runs one checked call on the pool. Resolves to [status, body]: 200 and
// the call resource, or an error status and its problem object.
async function runCall(call) {
  const id = randomUUID();
  const task = { fn: call.function, args: call.args, submitted: performance.timeOrigin + performance.now() };
  let out;
  try {
    out = await pool.run(task);
  } catch (e) {
    return [500, { type: '/problems/function-failed', title: 'Function failed', status: 500,
      detail: String(e && e.message), id, function: call.function }];
  }
  if (out.invalid !== undefined) {
    return [422, { type: '/problems/invalid-arguments', title: 'Invalid arguments', status: 422,
      detail: out.invalid, id, function: call.function }];
  }
  return [200, {
    id,
    function: call.function,
    status: 'succeeded',
    logs: out.logs,
    logs_dropped: 0,
    timing: { queue_ms: out.queue_ms, run_ms: out.run_ms },
    attempts: 1,
    result: out.result,
  }];
}

async function handleCalls(doc) {
  return runCall(checkCall(doc));
}

async function handleBatch(doc) {
  if (doc === null || typeof doc !== 'object' || !Array.isArray(doc.calls)) {
    throw malformed('a batch is {"calls": [call, ...]}');
  }
  if (doc.calls.length === 0 || doc.calls.length > MAX_BATCH_CALLS) {
    throw malformed(`a batch holds 1 to ${MAX_BATCH_CALLS} calls`);
  }
  const results = await Promise.all(doc.calls.map(async (c) => {
    let status, body;
    try {
      [status, body] = await runCall(checkCall(c));
    } catch (e) {
      if (!(e instanceof Problem)) throw e;
      [status, body] = [e.body.status, e.body];
    }
    if (status === 200) return body;
    return { id: body.id || null, function: body.function || null, status: 'failed', error: body };
  }));
  return [200, { results }];
}

const routes = { '/v1/calls': handleCalls, '/v1/batch': handleBatch };

function send(res, status, body, requestId) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': status < 400 ? 'application/json' : 'application/problem+json',
    'Content-Length': Buffer.byteLength(text),
    'X-Request-Id': requestId,
    'Cache-Control': 'no-store',
  });
  res.end(text);
}

const server = http.createServer((req, res) => {
  const requestId = randomUUID();
  const fail = (e) => {
    if (!(e instanceof Problem)) {
      e = new Problem(500, 'internal-error', 'Internal error', String(e && e.message));
    }
    send(res, e.body.status, e.body, requestId);
  };
  const route = routes[req.url];
  if (route === undefined) {
    if (req.url === '/livez') return send(res, 200, { status: 'ok' }, requestId);
    return fail(new Problem(404, 'not-found', 'Not found', `no route ${req.url}`));
  }
  if (req.method !== 'POST') {
    res.setHeader('Allow', 'POST');
    return fail(new Problem(405, 'method-not-allowed', 'Method not allowed', `${req.url} takes POST`));
  }
  if (!/^application\/json\b/.test(req.headers['content-type'] || '')) {
    return fail(new Problem(415, 'unsupported-media-type', 'Unsupported media type',
      'the body must be application/json'));
  }
  const chunks = [];
  let size = 0;
  let tooLarge = false;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) tooLarge = true;
    else chunks.push(chunk);
  });
  req.on('end', () => {
    if (tooLarge) {
      return fail(new Problem(413, 'payload-too-large', 'Payload too large',
        `the body exceeds ${MAX_BODY_BYTES} bytes`));
    }
    let doc;
    try {
      doc = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch (e) {
      return fail(malformed(`the body is not JSON: ${e.message}`));
    }
    route(doc).then(([status, body]) => send(res, status, body, requestId), fail);
  });
});

server.keepAliveTimeout = 60000;
server.listen(flags.port, flags.host, () => {
  const { address, port } = server.address();
  console.error(`piscina peer listening on ${address}:${port} (${flags.threads} threads)`);
});

function stop() {
  server.close();
  server.closeAllConnections();
  pool.destroy().finally(() => process.exit(0));
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
