// admin-audit.js — the admin page's activity log: the organization's audit entries,
// newest first, filtered by kind of change and date range, with "Show older" (the
// API's cursor) and a CSV download of the same filter.
// Why: a practice must be able to show who changed what and when (video switches,
// bookings, notes, people) without asking a developer; notes' text is never in it.

import { el, $ } from './dom.js';
import { accessToken, call, renew } from './session.js';
import { dateTime } from './shell.js';

/** Kinds of change offered in the filter: an action prefix and its label. */
export const KINDS = [
  ['', 'Everything'],
  ['schedule.', 'Bookings and notes'],
  ['group_session.', 'Group sessions'],
  ['community.', 'Communities'],
  ['therapist.', 'Therapists (video, hours, time off)'],
  ['client.', 'Clients'],
  ['user.', 'Accounts'],
  ['invitation.', 'Invitations'],
  ['organization.', 'Organization'],
  ['session.', 'Video sessions'],
  ['participant.', 'Who joined calls'],
  ['auth.', 'Sign-in'],
];

/** Query string of the filter form (empty fields left out); dates are local days. */
function filterQuery(extra = {}) {
  const q = new URLSearchParams();
  const kind = $('audit-kind').value;
  if (kind) q.set('action', kind);
  const from = $('audit-from').value;
  const to = $('audit-to').value;
  if (from) q.set('from', new Date(`${from}T00:00`).toISOString());
  if (to) q.set('to', new Date(new Date(`${to}T00:00`).getTime() + 86_400_000).toISOString());
  for (const [k, v] of Object.entries(extra)) if (v) q.set(k, v);
  return q;
}

/** "Ada Lovelace" for a known person id, else role and a short id; "System" for the server. */
function actorName(entry, names) {
  if (entry.actor_id === 'system') return 'System';
  return names.get(entry.actor_id) || `${entry.actor_role} ${String(entry.actor_id).slice(0, 8)}`;
}

function entryRow(entry, names) {
  return el('li', { class: 'audit-entry', 'data-action': entry.action },
    el('span', { class: 'muted when', text: dateTime(entry.at) }),
    el('strong', { text: entry.action }),
    el('span', { text: ` by ${actorName(entry, names)}` }),
    el('span', { class: 'muted', text: ` · ${entry.subject_type} ${String(entry.subject_id).slice(0, 8)}` }));
}

/**
 * The activity log card of organization `orgId`; `names()` maps person ids to names
 * (from the people list) so entries read "by Ada Lovelace".
 */
export function createAudit({ orgId }, names = () => new Map()) {
  const base = `/api/organizations/${encodeURIComponent(orgId)}/audit`;
  let cursor = null;
  const note = $('audit-note');

  async function load(more = false) {
    note.textContent = '';
    try {
      const page = await call(`${base}?${filterQuery({ limit: '50', cursor: more ? cursor : '' })}`);
      const rows = ((page && page.entries) || []).map((e) => entryRow(e, names()));
      if (more) $('audit-list').append(...rows); else $('audit-list').replaceChildren(...rows);
      cursor = page && page.next_cursor;
      $('audit-more').hidden = !cursor;
      $('audit-empty').hidden = $('audit-list').children.length > 0;
    } catch (e) {
      note.textContent = (e && e.message) || 'Could not load the activity log.';
    }
  }

  /** Downloads the filtered log as CSV (bearer auth, so a fetch and a blob, not a link). */
  async function download() {
    note.textContent = '';
    const get = () => fetch(`${base}.csv?${filterQuery()}`, {
      headers: { Authorization: `Bearer ${accessToken()}` }, cache: 'no-store' });
    try {
      let res = await get();
      if (res.status === 401) { await renew(); res = await get(); }
      if (!res.ok) throw new Error('Could not export the activity log.');
      const url = URL.createObjectURL(await res.blob());
      const a = el('a', { href: url, download: `activity-${new Date().toISOString().slice(0, 10)}.csv` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      if (res.headers.get('X-Next-Cursor')) note.textContent = 'The file holds the newest 1,000 entries; narrow the dates for older ones.';
    } catch (e) {
      note.textContent = (e && e.message) || 'Could not export the activity log.';
    }
  }

  $('audit-kind').replaceChildren(...KINDS.map(([value, text]) => el('option', { value, text })));
  $('audit-filters').addEventListener('submit', (ev) => { ev.preventDefault(); load(); });
  for (const id of ['audit-kind', 'audit-from', 'audit-to']) $(id).addEventListener('change', () => load());
  $('audit-more').addEventListener('click', () => load(true));
  $('audit-csv').addEventListener('click', download);
  return { load };
}
