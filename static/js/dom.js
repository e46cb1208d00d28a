// dom.js — the tiny DOM helper every page module shares.
// Why: building nodes with textContent (never innerHTML) in one place keeps user text
// (names, chat) from ever being parsed as HTML.

/**
 * Create an element. attrs: 'class', 'text' (textContent), 'on<event>' (listener), any
 * other attribute (true → empty attribute; false/null → omitted).
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v == null) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c != null) node.append(c);
  return node;
}

/** document.getElementById, short. */
export const $ = (id) => document.getElementById(id);

/** "just now", "2 min ago", "1 h 5 min ago" for a past instant (ms since epoch). */
export function ago(then, now = Date.now()) {
  const s = Math.max(0, Math.round((now - then) / 1000));
  if (s < 45) return 'just now';
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.floor(m / 60);
  return `${h} h ${m % 60} min ago`;
}

/** "14:05" for an RFC 3339 time or a Date, in the viewer's locale. */
export function clock(t) {
  const d = t instanceof Date ? t : new Date(t);
  return isNaN(d) ? '' : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}
