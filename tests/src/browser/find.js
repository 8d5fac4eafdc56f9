// Finds elements the way a person names them, for tests/src/browser/find.rs.
// Arguments: how ("css", "label" or a role such as "button"), then the CSS
// selector or the accessible name. Answers the matching elements that are
// rendered, or every match when none is.
//
// The accessible name is a subset of the ARIA computation that covers what
// the console uses: aria-labelledby, aria-label, <label>s (their text without
// the controls inside), a button's value, an element's own text, then title
// and placeholder. Whitespace is collapsed; the match is exact.
const [how, wanted] = arguments;
const normalize = (text) => (text || '').replace(/\s+/g, ' ').trim();
const CONTROLS = 'input, select, textarea, button, meter, output, progress';
const IMPLICIT_ROLES = {
  button: 'button, input[type=button], input[type=submit], input[type=reset]',
  link: 'a[href]',
  heading: 'h1, h2, h3, h4, h5, h6',
  textbox:
    'textarea, input:not([type]), input[type=text], input[type=email], input[type=url], input[type=tel], input[type=password], input[type=search]',
  spinbutton: 'input[type=number]',
  checkbox: 'input[type=checkbox]',
  radio: 'input[type=radio]',
  combobox: 'select:not([multiple])',
  listbox: 'select[multiple]',
  navigation: 'nav',
  main: 'main',
  table: 'table',
  row: 'tr',
  list: 'ul, ol',
  listitem: 'li',
  dialog: 'dialog',
  img: 'img[alt]:not([alt=""])',
  region: 'section[aria-label], section[aria-labelledby]',
  form: 'form[aria-label], form[aria-labelledby]',
};

const textWithoutControls = (element) => {
  const copy = element.cloneNode(true);
  copy.querySelectorAll(CONTROLS).forEach((control) => control.remove());
  return copy.textContent;
};

const accessibleName = (element) => {
  const labelledBy = element.getAttribute('aria-labelledby');
  if (labelledBy) {
    const parts = labelledBy.split(/\s+/).map((id) => document.getElementById(id)?.textContent ?? '');
    return normalize(parts.join(' '));
  }
  const label = normalize(element.getAttribute('aria-label'));
  if (label) return label;
  if (element.labels && element.labels.length > 0) {
    return normalize([...element.labels].map(textWithoutControls).join(' '));
  }
  if (element.matches('input[type=button], input[type=submit], input[type=reset]')) return normalize(element.value);
  if (!element.matches('input, select, textarea')) {
    const text = normalize(element.textContent);
    if (text) return text;
  }
  return normalize(element.getAttribute('title') || element.getAttribute('placeholder'));
};

const rendered = (element) =>
  element.getClientRects().length > 0 && getComputedStyle(element).visibility !== 'hidden';

let candidates;
if (how === 'css') {
  candidates = [...document.querySelectorAll(wanted)];
} else {
  const selector =
    how === 'label'
      ? `${CONTROLS}, [aria-label], [aria-labelledby]`
      : [`[role~="${how}"]`, IMPLICIT_ROLES[how]].filter(Boolean).join(', ');
  candidates = [...document.querySelectorAll(selector)].filter(
    (element) =>
      (how === 'label' || !element.hasAttribute('role') || element.getAttribute('role').split(/\s+/).includes(how)) &&
      accessibleName(element) === normalize(wanted),
  );
}
const shown = candidates.filter(rendered);
return shown.length > 0 ? shown : candidates;
