// Building the page: elements from data (text only, never HTML strings, so
// nothing the API returns can inject markup), labelled form fields, and
// RFC 9457 problems shown next to the fields they name.

/** `h('p', {class: 'x', onclick: f}, 'text', child)`. */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
    else if (value === true) element.setAttribute(name, '');
    else element.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

let fieldCount = 0;

/**
 * A labelled control: `field('Price', 'price', {type: 'text'})`; `name` is
 * the API's field name, so a problem naming it lands here. A `select`
 * takes `options` ([value, label] pairs); `textarea` its own tag.
 */
export function field(label, name, attributes = {}) {
  const id = `f-${name.replace(/[^a-z0-9_]/gi, '-')}-${++fieldCount}`;
  const { options, tag = options ? 'select' : 'input', hint, ...rest } = attributes;
  const control = h(tag, { id, name, 'aria-describedby': `${id}-error${hint ? ` ${id}-hint` : ''}`, ...rest });
  // A textarea's value is not an attribute; a select's is its option.
  if (rest.value !== undefined && rest.value !== null) control.value = rest.value;
  if (options) {
    for (const [value, text] of options) {
      control.append(h('option', { value, selected: String(rest.value ?? '') === value }, text));
    }
  }
  return h(
    'div',
    { class: 'field' },
    h('label', { for: id }, label),
    control,
    hint ? h('small', { id: `${id}-hint`, class: 'hint' }, hint) : null,
    h('small', { id: `${id}-error`, class: 'field-error', role: 'alert' }),
  );
}

/** A form's values by name (empty strings left out). */
export function values(form) {
  const result = {};
  for (const [name, value] of new FormData(form)) {
    if (typeof value === 'string' && value.trim() !== '') result[name] = value.trim();
  }
  return result;
}

function clearProblems(container) {
  for (const error of container.querySelectorAll('.field-error, .problem')) error.textContent = '';
  for (const control of container.querySelectorAll('[aria-invalid]')) control.removeAttribute('aria-invalid');
}

/**
 * Shows `error` in `container`: each of the problem's `errors` next to the
 * control it names, the rest in the container's `.problem` box; a 429 says
 * when to retry.
 */
export function showProblem(container, error) {
  clearProblems(container);
  const box = container.querySelector('.problem');
  const unplaced = [];
  for (const { field: name, message } of error.errors || []) {
    const control = container.querySelector(`[name="${CSS.escape(name)}"]`);
    const slot = control && document.getElementById(`${control.id}-error`);
    if (slot) {
      slot.textContent = message;
      control.setAttribute('aria-invalid', 'true');
    } else {
      unplaced.push(`${name}: ${message}`);
    }
  }
  if (box) box.textContent = [describe(error), ...unplaced].join(' — ');
}

/** A problem as the API words it; a 429 says when to retry. */
export function describe(error) {
  const parts = [error.title && error.status ? `${error.status} ${error.title}` : null, error.message];
  if (error.status === 429 && error.retryAfter) parts.push(`Try again in ${error.retryAfter} s.`);
  return parts.filter(Boolean).join(' — ');
}

/**
 * Wires `form` to `act(values)`: problems shown in place, the submit
 * button disabled while it runs.
 */
export function onSubmit(form, act) {
  if (!form.querySelector('.problem')) form.append(h('p', { class: 'problem', role: 'alert' }));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const button = form.querySelector('[type=submit]');
    if (button) button.disabled = true;
    clearProblems(form);
    try {
      await act(values(form));
    } catch (error) {
      showProblem(form, error);
    } finally {
      if (button) button.disabled = false;
    }
  });
  return form;
}

/** A one-button action with its problem shown beside it. */
export function action(label, act, attributes = {}) {
  const problem = h('span', { class: 'problem', role: 'alert' });
  const button = h('button', { type: 'button', ...attributes }, label);
  button.addEventListener('click', async () => {
    button.disabled = true;
    problem.textContent = '';
    try {
      await act();
    } catch (error) {
      problem.textContent = describe(error);
    } finally {
      button.disabled = false;
    }
  });
  return h('span', { class: 'action' }, button, problem);
}

export function when(time) {
  return time ? new Date(time).toLocaleString() : '—';
}

/** Replaces the contents of `element`. */
export function fill(element, ...children) {
  element.replaceChildren(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
  return element;
}
