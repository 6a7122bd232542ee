'use strict';
// The peer's compute functions, run on piscina's worker threads: the same
// arithmetic and the same log lines as poolhost's `core` module
// (pool/modules/core_count.c), so that both services answer the benchmark's
// calls with the same result and about the same bytes. One call is one task
// on one thread: at the benchmark's connection counts, calls in flight keep
// every thread busy, as poolhost's pool does.
const { performance } = require('node:perf_hooks');
const { threadId } = require('node:worker_threads');

const SUM_SQUARES_MAX = 10000000000;
const NQUEENS_MAX = 16;

// Above this n, sum_squares leaves Number's exact range (2^53) and sums in
// BigInt (slower, but exact, like poolhost's 128-bit sum).
const SUM_SQUARES_NUMBER_MAX = 200000;

class InvalidArguments extends Error {}

// Checks that args holds only `known` keys and returns args[name], an
// integer in [0, max]; throws InvalidArguments otherwise.
function intArg(args, known, name, max) {
  for (const key of Object.keys(args)) {
    if (!known.includes(key)) {
      throw new InvalidArguments(`unknown argument "${key}"`);
    }
  }
  const v = args[name];
  if (v === undefined) throw new InvalidArguments(`"${name}" is required`);
  if (!Number.isInteger(v) || v < 0 || v > max) {
    throw new InvalidArguments(`"${name}" must be an integer in [0, ${max}]`);
  }
  return v;
}

function sumSquares(args, log) {
  const n = intArg(args, ['n'], 'n', SUM_SQUARES_MAX);
  log('info', `sum_squares: summing i^2 for i in [1, ${n}]`);
  let sum;
  if (n <= SUM_SQUARES_NUMBER_MAX) {
    let s = 0;
    for (let i = 1; i <= n; i++) s += i * i;
    sum = String(s);
  } else {
    let s = 0n;
    for (let i = 1n, end = BigInt(n); i <= end; i++) s += i * i;
    sum = s.toString();
  }
  log('debug', `sum_squares: ${sum}`);
  return { sum };
}

// Solutions below a partial placement; ld/rd are the diagonals attacked in
// the current row (the bit search of poolhost's nq_solve).
function nqSolve(all, cols, ld, rd) {
  if (cols === all) return 1;
  let count = 0;
  let avail = all & ~(cols | ld | rd);
  while (avail !== 0) {
    const bit = avail & -avail;
    avail ^= bit;
    count += nqSolve(all, cols | bit, ((ld | bit) << 1) & all, (rd | bit) >>> 1);
  }
  return count;
}

function nqueens(args, log) {
  const n = intArg(args, ['n'], 'n', NQUEENS_MAX);
  const depth = n < 2 ? n : 2;
  log('info', `nqueens: counting solutions on a ${n}x${n} board, ${n ** depth} tasks`);
  return { count: nqSolve((1 << n) - 1, 0, 0, 0) };
}

const functions = { sum_squares: sumSquares, nqueens };

// A task: {fn, args, submitted} (submitted: performance.timeOrigin +
// performance.now() on the main thread). Returns {result, logs, queue_ms,
// run_ms} or {invalid: message} for arguments the function rejects.
module.exports = function run({ fn, args, submitted }) {
  const start = performance.timeOrigin + performance.now();
  const logs = [];
  const log = (level, message) =>
    logs.push({ ts: Date.now(), worker: threadId - 1, level, message, attempt: 1 });
  try {
    const result = functions[fn](args, log);
    const end = performance.timeOrigin + performance.now();
    return {
      result,
      logs,
      queue_ms: Math.round((start - submitted) * 1000) / 1000,
      run_ms: Math.round((end - start) * 1000) / 1000,
    };
  } catch (e) {
    if (e instanceof InvalidArguments) return { invalid: e.message };
    throw e;
  }
};

module.exports.functionNames = Object.keys(functions);
