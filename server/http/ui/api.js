// Requests to the service, and the bearer tokens the user gave. Tokens
// live in this page's memory only: a reload forgets them.

export const tokens = { client: '', admin: '' };

// The token for call routes and the event stream: the client's, else the
// admin's (which may see every call).
export function viewerAuth() {
  const t = tokens.client || tokens.admin;
  return t ? { Authorization: `Bearer ${t}` } : {};
}

export function adminAuth() {
  return tokens.admin ? { Authorization: `Bearer ${tokens.admin}` } : {};
}

// fetch() that parses a JSON or problem+json body; never throws for HTTP
// errors: { status, ok, body, headers } (status 0 when the request failed).
export async function request(method, url, { body, headers = {} } = {}) {
  const init = { method, headers: { Accept: 'application/json', ...headers }, cache: 'no-store' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(url, init);
  } catch (e) {
    return { status: 0, ok: false, body: { title: 'The service did not answer', detail: String(e) }, headers: new Headers() };
  }
  let parsed = null;
  const text = await res.text();
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = { title: text };
    }
  }
  return { status: res.status, ok: res.ok, body: parsed, headers: res.headers };
}

// Asks for a token in the page's dialog (filled with value, if any: then
// it confirms an action); resolves to the token or null.
// (No <form method="dialog">: the page's CSP has form-action 'none'.)
export function askToken(why, label = 'Bearer token', value = '') {
  const dialog = document.getElementById('token-dialog');
  const form = document.getElementById('token-form');
  const input = document.getElementById('token-input');
  document.getElementById('token-why').textContent = why;
  document.querySelector('label[for="token-input"]').textContent = label;
  input.value = value;
  return new Promise((resolve) => {
    const submit = (e) => {
      e.preventDefault();
      dialog.close('ok');
    };
    const cancel = () => dialog.close('cancel');
    const cancelButton = document.getElementById('token-cancel');
    form.addEventListener('submit', submit);
    cancelButton.addEventListener('click', cancel);
    dialog.addEventListener('close', () => {
      form.removeEventListener('submit', submit);
      cancelButton.removeEventListener('click', cancel);
      resolve(dialog.returnValue === 'ok' && input.value.trim() ? input.value.trim() : null);
    }, { once: true });
    dialog.returnValue = '';
    dialog.showModal();
    input.focus();
  });
}
