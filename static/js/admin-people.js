// admin-people.js — the admin page's therapist and client lists: video switch per
// therapist, bulk video on/off with a reason, blog permission, deactivate/reactivate,
// all filtered by the page's search and filters.
// Why: the people half of the practice's back office, kept apart from the page's wiring
// (admin.js) and the invitations (admin-invites.js).

import { el, $ } from './dom.js';
import { call } from './session.js';

let seq = 0;
const uid = (prefix) => `${prefix}-${++seq}`;

/** A small status badge. */
const badge = (text, kind = '') => el('span', { class: `badge ${kind}`.trim(), text });

/** A line under a row for the outcome of its last action (server's words). */
const noteLine = () => el('p', { class: 'row-note', 'aria-live': 'polite' });

/** Run an action on a button: disable it meanwhile, show errors in `note`. */
async function act(btn, note, fn) {
  btn.disabled = true;
  note.textContent = '';
  note.classList.remove('bad');
  try {
    await fn();
  } catch (e) {
    note.textContent = (e && e.message) || 'That did not work. Please try again.';
    note.classList.add('bad');
  } finally {
    btn.disabled = false;
  }
}

/** The organization shown (`{ orgId, controlled }`) and its API base path. */
let ctx = { orgId: '', controlled: false };
let base = '';
/** Therapist ids ticked for the bulk switch, and the therapists listed now. */
const selected = new Set();
let shown = [];

function filters() {
  return { q: $('filter-q').value.trim(), status: $('filter-status').value, video: $('filter-video').value };
}

function updateBulk() {
  for (const id of [...selected]) if (!shown.some((t) => t.id === id)) selected.delete(id);
  $('bulk-count').textContent = String(selected.size);
  $('bulk').hidden = !ctx.controlled || selected.size === 0;
  $('select-all-row').hidden = !ctx.controlled || shown.length === 0;
  $('select-all').checked = shown.length > 0 && shown.every((t) => selected.has(t.id));
}

function videoSwitch(t, note, changed) {
  const id = uid('video');
  const box = el('input', { type: 'checkbox', id, role: 'switch', 'aria-label': `Video sessions for ${t.display_name}` });
  box.checked = !!t.video_sessions_enabled;
  box.addEventListener('change', () => act(box, note, async () => {
    const on = box.checked;
    try {
      const r = await call(`${base}/therapists/${encodeURIComponent(t.id)}/video-settings`, { method: 'PUT', body: { video_sessions_enabled: on } });
      t.video_sessions_enabled = !!(r && r.video_sessions_enabled);
    } catch (e) {
      box.checked = !on;
      throw e;
    }
    box.checked = t.video_sessions_enabled;
    note.textContent = t.video_sessions_enabled ? 'Video sessions switched on.' : 'Video sessions switched off: new sessions are refused.';
    changed();
  }));
  return el('label', { class: 'switch small', for: id }, box, el('span', { text: 'Video' }));
}

function blogControl(t, note, changed) {
  const btn = el('button', { class: 'btn small', type: 'button' });
  const paint = () => { btn.textContent = t.can_post_blogs ? 'Revoke blog posting' : 'Allow blog posting'; };
  paint();
  btn.addEventListener('click', () => act(btn, note, async () => {
    const verb = t.can_post_blogs ? 'revoke' : 'grant';
    const r = await call(`${base}/therapists/${encodeURIComponent(t.id)}/blog-permission/${verb}`, { method: 'POST' });
    t.can_post_blogs = !!(r && r.therapist ? r.therapist.can_post_blogs : verb === 'grant');
    note.textContent = (r && r.message) || '';
    paint();
    changed();
  }));
  return btn;
}

function activeButton(path, person, note) {
  const btn = el('button', { class: `btn small${person.active ? ' danger-quiet' : ''}`, type: 'button', text: person.active ? 'Deactivate' : 'Reactivate' });
  btn.addEventListener('click', () => {
    if (person.active && !confirm(`Deactivate ${person.display_name}? They are signed out at once and cannot sign in until reactivated.`)) return;
    act(btn, note, async () => {
      await call(`${path}/${person.active ? 'deactivate' : 'reactivate'}`, { method: 'POST' });
      await load();
    });
  });
  return btn;
}

function paintBadges(badges, t) {
  badges.replaceChildren();
  if (!t.active) badges.append(badge('Deactivated', 'off'));
  if (ctx.controlled && !t.video_sessions_enabled) badges.append(badge('Video off', 'warn'));
  if (ctx.controlled && t.can_post_blogs) badges.append(badge('Blog posting'));
}

function therapistRow(t) {
  const note = noteLine();
  const badges = el('span', { class: 'badges' });
  const changed = () => paintBadges(badges, t);
  changed();
  const head = el('div', { class: 'who-line' });
  if (ctx.controlled) {
    const id = uid('sel');
    const sel = el('input', { type: 'checkbox', id, class: 'select', 'aria-label': `Select ${t.display_name}` });
    sel.checked = selected.has(t.id);
    sel.addEventListener('change', () => { if (sel.checked) selected.add(t.id); else selected.delete(t.id); updateBulk(); });
    head.append(sel);
  }
  head.append(el('div', { class: 'info' }, el('strong', { text: t.display_name || t.email }), el('span', { class: 'muted', text: t.email }), badges));
  const controls = el('div', { class: 'controls-row' });
  if (ctx.controlled) controls.append(videoSwitch(t, note, changed), blogControl(t, note, changed));
  controls.append(activeButton(`${base}/therapists/${encodeURIComponent(t.id)}`, t, note));
  return el('li', { class: 'person' + (t.active ? '' : ' inactive') + (ctx.controlled ? ' selectable' : ''), 'data-id': t.id, 'data-email': t.email }, head, controls, note);
}

function clientRow(c) {
  const note = noteLine();
  const badges = el('span', { class: 'badges' });
  if (!c.active) badges.append(badge('Deactivated', 'off'));
  return el('li', { class: 'person' + (c.active ? '' : ' inactive'), 'data-id': c.id, 'data-email': c.email },
    el('div', { class: 'who-line' }, el('div', { class: 'info' },
      el('strong', { text: c.display_name || c.email }),
      el('span', { class: 'muted', text: [c.email, c.therapist_name ? `with ${c.therapist_name}` : ''].filter(Boolean).join(' · ') }),
      badges)),
    el('div', { class: 'controls-row' }, activeButton(`/api/clients/${encodeURIComponent(c.id)}`, c, note)),
    note);
}

function showList(listId, emptyId, countId, rows, error) {
  $(listId).replaceChildren(...(error ? [el('li', { class: 'field-error', text: error })] : rows));
  $(emptyId).hidden = !!error || rows.length > 0;
  $(countId).textContent = error ? '' : `(${rows.length})`;
}

/** Names of the people loaded so far, by id (the activity log shows names, not ids). */
const known = new Map();

function remember(list) {
  for (const p of list) known.set(p.id, p.display_name || p.email);
}

async function loadTherapists(f, gen) {
  const q = new URLSearchParams({ q: f.q, status: f.status });
  if (ctx.controlled && f.video !== 'all') q.set('video', f.video);
  try {
    const data = await call(`${base}/therapists?${q}`);
    if (gen !== loads) return;
    const list = (data && data.therapists) || [];
    remember(list);
    shown = list;
    showList('therapists', 'therapists-empty', 'therapists-count', list.map(therapistRow));
  } catch (e) {
    if (gen !== loads) return;
    shown = [];
    showList('therapists', 'therapists-empty', 'therapists-count', [], (e && e.message) || 'Could not load the therapists.');
  }
  updateBulk();
}

async function loadClients(f, gen) {
  const q = new URLSearchParams({ q: f.q, status: f.status });
  try {
    const data = await call(`/api/clients?${q}`);
    if (gen !== loads) return;
    const list = (data && data.clients) || [];
    remember(list);
    showList('clients', 'clients-empty', 'clients-count', list.map(clientRow));
  } catch (e) {
    if (gen !== loads) return;
    showList('clients', 'clients-empty', 'clients-count', [], (e && e.message) || 'Could not load the clients.');
  }
}

async function bulk(on) {
  const btn = on ? $('bulk-on') : $('bulk-off');
  const reason = $('bulk-reason').value.trim();
  if (!reason) {
    $('bulk-note').textContent = 'Please give a reason: it is kept with the change.';
    $('bulk-reason').focus();
    return;
  }
  await act(btn, $('bulk-note'), async () => {
    const ids = [...selected];
    const r = await call(`${base}/therapists/video-settings/bulk`, { method: 'PUT', body: { therapist_ids: ids, video_sessions_enabled: on, reason } });
    const n = (r && r.updated) || ids.length;
    selected.clear();
    $('bulk-reason').value = '';
    await load();
    $('bulk-note').textContent = `Video sessions switched ${on ? 'on' : 'off'} for ${n} therapist${n === 1 ? '' : 's'}.`;
  });
}

/** Number of the latest `load()`: an answer to an older one (filters changed since, or a
 * reload after an action overtook it) is dropped instead of overwriting newer lists. */
let loads = 0;

async function load() {
  const f = filters();
  const gen = ++loads;
  await Promise.all([loadTherapists(f, gen), loadClients(f, gen)]);
}

/**
 * The people lists of `organization.orgId`; `organization.controlled`
 * (theraptrack-controlled) shows the per-therapist video switches and blog permission.
 * Wires the bulk and selection controls once; returns `{ load, names }` (`names()`:
 * id → name of everyone listed so far).
 */
export function createPeople(organization) {
  ctx = organization;
  base = `/api/organizations/${encodeURIComponent(ctx.orgId)}`;
  $('bulk-on').addEventListener('click', () => bulk(true));
  $('bulk-off').addEventListener('click', () => bulk(false));
  $('bulk-clear').addEventListener('click', () => { selected.clear(); load(); });
  $('select-all').addEventListener('change', () => {
    for (const t of shown) if ($('select-all').checked) selected.add(t.id); else selected.delete(t.id);
    load();
  });
  $('filter-video').closest('.field').hidden = !ctx.controlled;
  return { load, names: () => known };
}
