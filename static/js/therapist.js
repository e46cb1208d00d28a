// therapist.js — entry point of /therapist: create sessions, share their link, end them.
// Why: the therapist's small control panel over the REST API; it never opens media itself
// ("Join now" opens the join page, which does). The token comes from the session module
// (refresh cookie, see session.js); `#access_token=…` still works for scripts and the
// e2e scenarios.

import { api } from './api.js';
import { takeAccessToken, clearAccessToken, tokenClaims, isExpired } from './auth.js';
import { el } from './dom.js';
import { start, call, accessToken, signOut as sessionSignOut } from './session.js';
import { copyText } from './shell.js';

const $ = (id) => document.getElementById(id);
/** A token handed over in `#access_token=…` (used as is, never refreshed), or null. */
let fixedToken = null;
let me = null;

const currentToken = () => fixedToken || accessToken();

/** A REST call with whichever token this page runs on. */
function rest(path, opts = {}) {
  return fixedToken ? api(path, { ...opts, token: fixedToken }) : call(path, opts);
}

function showMessage(text, kind = 'error') {
  const box = $('message');
  box.replaceChildren(el('p', { text }));
  box.className = `message ${kind}`;
  box.hidden = false;
}
function clearMessage() { $('message').hidden = true; }

function showError(e) {
  // Show the server's own message (e.g. 403 therapist_disabled explains what to do).
  showMessage(e && e.message ? e.message : 'Something went wrong. Please try again.');
}

function absolute(path) {
  return new URL(path, location.origin).href;
}

function joinUrl(s) {
  return s.join_url || (s.share_token ? `/join/${encodeURIComponent(s.share_token)}` : null);
}

/** join page URL carrying our token in the fragment, so we join as ourselves. */
function joinAsSelf(s) {
  return `${joinUrl(s)}#access_token=${encodeURIComponent(currentToken())}`;
}

function render() {
  $('create').hidden = false;
  $('sessions-card').hidden = false;
  $('who').hidden = false;
  const c = (fixedToken && tokenClaims(fixedToken)) || {};
  const name = (me && (me.display_name || me.email)) || c.name || c.email || c.display_name;
  $('who-name').textContent = name || (c.role ? `Signed in (${c.role})` : 'Signed in');
  if (fixedToken && isExpired(fixedToken)) showMessage('Your access token has expired. Sign out and sign in again.');
}

function signOut() {
  if (!fixedToken) { sessionSignOut(); return; }
  clearAccessToken();
  location.assign('/signin.html');
}

function showCreated(s) {
  const link = absolute(joinUrl(s));
  $('created-title').textContent = `“${s.session_name}” is ready`;
  $('share-link').value = link;
  $('copy-note').textContent = '';
  $('join-now').href = joinAsSelf(s);
  $('created').hidden = false;
}

function fmtTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return isNaN(d) ? String(iso) : d.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
}

async function loadSessions() {
  let data;
  try {
    data = await rest('/api/sessions');
  } catch (e) {
    showError(e);
    return;
  }
  const list = (data && data.sessions) || [];
  $('sessions-empty').hidden = list.length > 0;
  $('sessions').replaceChildren(...list.map(sessionItem));
}

/** The per-session waiting-room switch (PATCH /api/sessions/{id}). */
function waitingSwitch(s) {
  const id = `wr-${s.id}`;
  const box = el('input', { type: 'checkbox', id, role: 'switch' });
  box.checked = !!s.waiting_room;
  const note = el('span', { class: 'muted', 'aria-live': 'polite' });
  box.addEventListener('change', async () => {
    const on = box.checked;
    box.disabled = true;
    note.textContent = '';
    try {
      const v = await rest(`/api/sessions/${encodeURIComponent(s.id)}`, { method: 'PATCH', body: { waiting_room: on } });
      s.waiting_room = v && typeof v.waiting_room === 'boolean' ? v.waiting_room : on;
      box.checked = s.waiting_room;
      note.textContent = s.waiting_room ? 'on' : 'off';
    } catch (e) {
      box.checked = !on;
      note.textContent = (e && e.message) || 'Could not change it.';
    } finally {
      box.disabled = false;
    }
  });
  return el('label', { class: 'switch small', for: id }, box, el('span', { text: 'Waiting room' }), note);
}

function sessionItem(s) {
  const active = s.is_active !== false;
  const actions = el('div', { class: 'actions' });
  const item = el('li', { class: 'session' + (active ? '' : ' ended'), 'data-id': s.id },
    el('div', { class: 'info' },
      el('strong', { text: s.session_name || 'Untitled session' }),
      el('span', { class: 'muted', text: [
        active ? 'Active' : 'Ended',
        s.max_participants ? `up to ${s.max_participants} people` : '',
        s.expires_at ? `expires ${fmtTime(s.expires_at)}` : '',
      ].filter(Boolean).join(' · ') })),
    actions);
  if (active && joinUrl(s)) {
    if (typeof s.waiting_room === 'boolean') item.querySelector('.info').append(waitingSwitch(s));
    actions.append(
      el('button', { class: 'btn small', type: 'button', text: 'Copy link', onclick: async (ev) => {
        const ok = await copyText(absolute(joinUrl(s)));
        ev.target.textContent = ok ? 'Copied' : 'Copy failed';
        setTimeout(() => { ev.target.textContent = 'Copy link'; }, 2000);
      } }),
      el('a', { class: 'btn small', href: joinAsSelf(s), target: '_blank', rel: 'noopener', text: 'Join' }),
      el('button', { class: 'btn small danger', type: 'button', text: 'End', onclick: (ev) => endSession(s, ev.target) }),
    );
  }
  return item;
}

async function endSession(s, btn) {
  if (!confirm(`End “${s.session_name}” for everyone?`)) return;
  btn.disabled = true;
  try {
    await rest(`/api/sessions/${encodeURIComponent(s.id)}/end`, { method: 'POST' });
    clearMessage();
    if ($('share-link').value === absolute(joinUrl(s) || '')) $('created').hidden = true;
  } catch (e) {
    showError(e);
  }
  btn.disabled = false;
  loadSessions();
}

$('signout-btn').addEventListener('click', () => signOut());

$('create-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const name = $('session-name-input').value.trim();
  if (!name) { showMessage('Please give the session a name.'); return; }
  const body = { session_name: name, waiting_room: $('waiting-input').checked };
  const maxRaw = $('max-input').value.trim();
  if (maxRaw) {
    const n = Number(maxRaw);
    if (!Number.isInteger(n) || n < 2) { showMessage('Max participants must be a whole number of at least 2.'); return; }
    body.max_participants = n;
  }
  $('create-btn').disabled = true;
  try {
    const s = await rest('/api/sessions', { method: 'POST', body });
    clearMessage();
    showCreated(s);
    $('session-name-input').value = '';
    $('max-input').value = '';
    $('waiting-input').checked = true;
    loadSessions();
  } catch (e) {
    showError(e);
  } finally {
    $('create-btn').disabled = false;
  }
});

$('copy-btn').addEventListener('click', async () => {
  const ok = await copyText($('share-link').value);
  $('copy-note').textContent = ok ? 'Link copied.' : 'Could not copy — select the link and copy it by hand.';
  if (!ok) $('share-link').select();
});

$('refresh-btn').addEventListener('click', () => loadSessions());

async function main() {
  // `#access_token=…` (scripts, e2e): use that token as it is.
  if (location.hash.includes('access_token=')) fixedToken = takeAccessToken();
  if (!fixedToken) {
    try {
      me = await start({ roles: ['therapist', 'organization', 'admin', 'super_admin'] });
    } catch (e) {
      showError(e);
      return;
    }
    if (!me) return; // on the way to sign-in
  }
  render();
  loadSessions();
}

main();
