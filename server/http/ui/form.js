// A form for a function's arguments, built from their JSON Schema: a
// number field per integer or number (with its range and default), a
// checkbox per boolean, a list per enum, a text field per string, a JSON
// field per array or object. A function that describes its arguments only
// in prose gets one raw JSON field.

import { h } from '/ui/view.js';

function typeOf(s) {
  const t = Array.isArray(s.type) ? s.type.find((x) => x !== 'null') : s.type;
  if (t) return t;
  if (s.enum) return typeof s.enum[0] === 'number' ? 'number' : 'string';
  return 'json';
}

function rangeText(s) {
  const parts = [];
  if (s.minimum !== undefined && s.maximum !== undefined) parts.push(`${s.minimum} to ${s.maximum}`);
  else if (s.minimum !== undefined) parts.push(`at least ${s.minimum}`);
  else if (s.maximum !== undefined) parts.push(`at most ${s.maximum}`);
  if (s.maxItems !== undefined) parts.push(`at most ${s.maxItems} items`);
  if (s.minLength !== undefined && s.minLength > 0) parts.push(`at least ${s.minLength} characters`);
  if (s.maxLength !== undefined) parts.push(`at most ${s.maxLength} characters`);
  return parts.join(', ');
}

// Fills fieldset with fields for schema; returns read() -> { args } or
// { error, field } (the element to focus).
export function buildArgsForm(fieldset, schema, fnName) {
  const legend = fieldset.querySelector('legend');
  fieldset.replaceChildren(legend);
  const props = schema && schema.properties;
  if (!props) {
    const id = 'arg-raw';
    const note = schema && schema.description;
    const area = h('textarea', { id, name: 'args', rows: 4, spellcheck: 'false', 'aria-describedby': note ? `${id}-d` : undefined });
    area.value = '{}';
    fieldset.append(h('p', {}, h('label', { for: id, text: 'Arguments (JSON object)' }), area));
    if (note) fieldset.append(h('p', { id: `${id}-d`, class: 'hint', text: note }));
    return () => {
      try {
        const v = JSON.parse(area.value || '{}');
        if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
        return { args: v };
      } catch (e) {
        return { error: `Arguments: not a JSON object (${e.message})`, field: area };
      }
    };
  }
  const required = new Set(schema.required || []);
  const readers = [];
  if (schema.description) fieldset.append(h('p', { class: 'hint', text: schema.description }));
  if (!Object.keys(props).length) fieldset.append(h('p', { class: 'hint', text: `${fnName} takes no arguments.` }));
  for (const [name, s] of Object.entries(props)) {
    const id = `arg-${name}`;
    const type = typeOf(s);
    const descId = `${id}-d`;
    const hint = [s.description, rangeText(s), s.default !== undefined ? `default ${JSON.stringify(s.default)}` : '']
      .filter(Boolean).join('; ');
    const req = required.has(name);
    const label = h('label', { for: id }, name, req ? h('span', { class: 'req', text: ' (required)' }) : '');
    let input;
    let read;
    if (s.enum) {
      input = h('select', { id, name });
      if (!req) input.append(h('option', { value: '', text: '(default)' }));
      for (const v of s.enum) input.append(h('option', { value: JSON.stringify(v), text: String(v) }));
      if (s.default !== undefined) input.value = JSON.stringify(s.default);
      read = () => (input.value === '' ? undefined : JSON.parse(input.value));
    } else if (type === 'boolean') {
      input = h('input', { id, name, type: 'checkbox' });
      input.checked = s.default === true;
      read = () => input.checked;
    } else if (type === 'integer' || type === 'number') {
      input = h('input', {
        id, name, type: 'number', inputmode: type === 'integer' ? 'numeric' : 'decimal',
        step: type === 'integer' ? '1' : 'any', min: s.minimum, max: s.maximum, required: req,
      });
      if (s.default !== undefined) input.value = String(s.default);
      read = () => {
        if (input.value.trim() === '') {
          if (req) throw new Error(`${name} is required`);
          return undefined;
        }
        const v = Number(input.value);
        if (!Number.isFinite(v) || (type === 'integer' && !Number.isInteger(v))) throw new Error(`${name} must be ${type === 'integer' ? 'an integer' : 'a number'}`);
        if (s.minimum !== undefined && v < s.minimum) throw new Error(`${name} must be at least ${s.minimum}`);
        if (s.maximum !== undefined && v > s.maximum) throw new Error(`${name} must be at most ${s.maximum}`);
        return v;
      };
    } else if (type === 'string') {
      input = h('input', { id, name, type: 'text', minlength: s.minLength, maxlength: s.maxLength, required: req, spellcheck: 'false' });
      if (s.default !== undefined) input.value = String(s.default);
      read = () => {
        if (input.value === '' && !req) return undefined;
        return input.value;
      };
    } else {
      input = h('textarea', { id, name, rows: 2, spellcheck: 'false', required: req });
      if (s.default !== undefined) input.value = JSON.stringify(s.default);
      else input.placeholder = type === 'array' ? '[1, 2, 3]' : '{}';
      read = () => {
        if (input.value.trim() === '') {
          if (req) throw new Error(`${name} is required`);
          return undefined;
        }
        let v;
        try {
          v = JSON.parse(input.value);
        } catch {
          throw new Error(`${name}: not JSON`);
        }
        if (type === 'array' && !Array.isArray(v)) throw new Error(`${name} must be a JSON array`);
        if (s.maxItems !== undefined && v.length > s.maxItems) throw new Error(`${name}: at most ${s.maxItems} items`);
        return v;
      };
    }
    if (hint) input.setAttribute('aria-describedby', descId);
    const row = type === 'boolean'
      ? h('p', { class: 'check' }, input, label)
      : h('p', {}, label, input);
    if (hint) row.append(h('span', { id: descId, class: 'hint', text: hint }));
    fieldset.append(row);
    readers.push([name, read, input]);
  }
  return () => {
    const args = {};
    for (const [name, read, input] of readers) {
      try {
        const v = read();
        if (v !== undefined) args[name] = v;
      } catch (e) {
        return { error: e.message, field: input };
      }
    }
    return { args };
  };
}
