// shell.js — what every account page (home, admin, client, therapist) shares around
// its content: the page message box, the "who is signed in" corner with Sign out, copying
// a link, and date formatting.
// Why: one implementation of each keeps the pages small and behaving alike.

import { el, $ } from './dom.js';
import { signOut } from './session.js';

/** Show one sentence in the page's #message box (`error` or `info`). */
export function showMessage(text, kind = 'error') {
  const box = $('message');
  box.replaceChildren(el('p', { text }));
  box.className = `message ${kind}`;
  box.hidden = false;
}

/** Hide the page's #message box. */
export function clearMessage() {
  $('message').hidden = true;
}

/** Fill the top bar's #who corner with the person's name and wire #signout-btn. */
export function mountWho(me) {
  const who = $('who');
  if (!who || !me) return;
  $('who-name').textContent = me.display_name || me.email || 'Signed in';
  $('who-name').title = me.email || '';
  who.hidden = false;
  $('signout-btn').setAttribute('aria-label', `Sign out ${me.display_name || me.email || ''}`.trim());
  $('signout-btn').title = `Signed in as ${me.display_name || me.email || ''}`;
  $('signout-btn').onclick = () => { $('signout-btn').disabled = true; signOut(); };
}

/** Copy text to the clipboard; false when the browser refused (http:// origins). */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const ta = el('textarea', { readonly: true, class: 'offscreen' });
    ta.value = text;
    document.body.append(ta);
    ta.select();
    let ok = false;
    try { ok = document.execCommand('copy'); } catch { ok = false; }
    ta.remove();
    return ok;
  }
}

/** "3 Dec 2026, 14:05" in the viewer's locale and time zone ('' when not a date). */
export function dateTime(t) {
  const d = t instanceof Date ? t : new Date(t);
  return isNaN(d) ? '' : d.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
}

/** "14:05" in the viewer's locale and time zone, written as dateTime() writes times
 * (so "8:41 AM – 9:31 AM", not "8:41 AM – 09:31 AM"). */
export function timeOnly(t) {
  const d = t instanceof Date ? t : new Date(t);
  return isNaN(d) ? '' : d.toLocaleTimeString([], { timeStyle: 'short' });
}

/** An absolute URL for a path on this server. */
export function absolute(path) {
  return new URL(path, location.origin).href;
}

/** The join page of a room, carrying the access token so the person joins as themselves. */
export function joinAsSelf(joinUrl, token) {
  return `${joinUrl}#access_token=${encodeURIComponent(token)}`;
}
