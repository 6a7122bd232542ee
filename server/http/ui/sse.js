// Server-Sent Events over fetch(): unlike EventSource, fetch can send an
// Authorization header. Parses the stream as the HTML standard says
// (fields id, event, data, retry; comments; CR, LF or CRLF line ends),
// reconnects after `retry` ms with Last-Event-ID, and stops for good on
// 204 or when the caller says so.

export class SseStream {
  // url; headers(): extra request headers (called on every connect);
  // onEvent(type, data, id); onStatus(state, detail) with state one of
  // "open", "retrying", "closed", "http" (detail: the Response).
  constructor(url, { headers = () => ({}), onEvent, onStatus = () => {}, reconnect = true } = {}) {
    this.url = url;
    this.headers = headers;
    this.onEvent = onEvent;
    this.onStatus = onStatus;
    this.reconnect = reconnect;
    this.lastId = null;
    this.retryMs = 2000;
    this.ctrl = null;
    this.timer = null;
    this.stopped = false;
  }

  start() {
    this.stopped = false;
    this.connect();
    return this;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ctrl) this.ctrl.abort();
    this.ctrl = null;
  }

  // Reconnects now; fresh (without Last-Event-ID) when asked, e.g. with
  // a new token, which may see more than the old one.
  restart(fresh = false) {
    this.stop();
    if (fresh) this.lastId = null;
    this.start();
  }

  schedule() {
    if (this.stopped || !this.reconnect) {
      this.onStatus('closed');
      return;
    }
    this.onStatus('retrying', this.retryMs);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), this.retryMs);
  }

  async connect() {
    if (this.stopped) return;
    const ctrl = new AbortController();
    this.ctrl = ctrl;
    const headers = { Accept: 'text/event-stream', ...this.headers() };
    if (this.lastId !== null) headers['Last-Event-ID'] = this.lastId;
    let res;
    try {
      res = await fetch(this.url, { headers, signal: ctrl.signal, cache: 'no-store' });
    } catch {
      if (!ctrl.signal.aborted) this.schedule();
      return;
    }
    if (res.status === 204) {
      this.stopped = true;
      this.onStatus('closed');
      return;
    }
    const type = res.headers.get('Content-Type') || '';
    if (!res.ok || !type.startsWith('text/event-stream') || !res.body) {
      // The caller decides (401: ask for a token); a 429 or 5xx is
      // retried unless the caller says no.
      const again = this.onStatus('http', res);
      if (again !== false && (res.status >= 500 || res.status === 429)) this.schedule();
      else this.stopped = true;
      return;
    }
    this.onStatus('open');
    try {
      await this.read(res.body, ctrl.signal);
    } catch {
      // aborted or the connection broke: fall through to reconnect
    }
    if (!ctrl.signal.aborted) this.schedule();
  }

  async read(body, signal) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    signal.addEventListener('abort', () => reader.cancel().catch(() => {}), { once: true });
    let buf = '';
    let data = [];
    let event = '';
    let id = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      let m;
      // A lone CR at the end of buf may be the first half of CRLF: wait.
      while ((m = /\r\n|\r(?!$)|\n/.exec(buf))) {
        const line = buf.slice(0, m.index);
        buf = buf.slice(m.index + m[0].length);
        if (line === '') {
          if (id !== null) this.lastId = id;
          if (data.length) {
            const type = event || 'message';
            let parsed;
            try {
              parsed = JSON.parse(data.join('\n'));
            } catch {
              parsed = data.join('\n');
            }
            if (this.stopped) return;
            this.onEvent(type, parsed, this.lastId);
          }
          data = [];
          event = '';
          id = null;
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let val = colon < 0 ? '' : line.slice(colon + 1);
        if (val.startsWith(' ')) val = val.slice(1);
        if (field === 'data') data.push(val);
        else if (field === 'event') event = val;
        else if (field === 'id' && !val.includes('\0')) id = val;
        else if (field === 'retry' && /^\d+$/.test(val)) this.retryMs = Number(val);
      }
    }
  }
}
