// agenda.js — booked 1:1 sessions and group sessions as list items with a Join button,
// for the therapist's home and the client's home.
// Why: both homes list the same two kinds of appointments and join them the same way
// (ask the server for the session's video room, then open the join page as oneself).

import { el } from './dom.js';
import { call, accessToken } from './session.js';
import { dateTime, timeOnly, joinAsSelf } from './shell.js';

/** `[start, end)` of the viewer's current day, in their own time zone, as RFC 3339. */
export function todayRange(now = new Date()) {
  const start = new Date(now.getFullYear(), now.getMonth(), now.getDate());
  const end = new Date(now.getFullYear(), now.getMonth(), now.getDate() + 1);
  return { start: start.toISOString(), end: end.toISOString() };
}

/** Booked sessions (GET /api/schedule/sessions) between two instants, still scheduled. */
export async function bookedSessions({ start, end }) {
  const q = new URLSearchParams({ status: 'scheduled', start });
  if (end) q.set('end', end);
  const data = await call(`/api/schedule/sessions?${q}`);
  return (data && data.sessions) || [];
}

/** Open a room's join page in this tab, as the signed-in person. */
function openRoom(room) {
  if (!room || !room.join_url) throw new Error('The server did not give a link to the video room.');
  location.assign(joinAsSelf(room.join_url, accessToken()));
}

/** A Join button: asks `path` for the video room, then opens it; refusals go to `note`. */
function joinButton(path, label, note) {
  const btn = el('button', { class: 'btn small primary', type: 'button', text: 'Join' });
  btn.setAttribute('aria-label', `Join ${label}`);
  btn.addEventListener('click', async () => {
    btn.disabled = true;
    note.textContent = '';
    try {
      openRoom(await call(path));
    } catch (e) {
      note.textContent = (e && e.message) || 'Could not open the video room.';
      btn.disabled = false;
    }
  });
  return btn;
}

/** One booked session; `withName` is who the viewer meets (client or therapist name). */
export function bookedItem(s, withName, { dayToo = false } = {}) {
  const when = dayToo ? `${dateTime(s.start)} – ${timeOnly(s.end)}` : `${timeOnly(s.start)} – ${timeOnly(s.end)}`;
  const note = el('span', { class: 'row-note bad', 'aria-live': 'polite' });
  const label = `session with ${withName} at ${timeOnly(s.start)}`;
  const over = new Date(s.end).getTime() <= Date.now();
  return el('li', { class: 'session' + (over ? ' ended' : ''), 'data-id': s.id },
    el('div', { class: 'info' },
      el('strong', { text: withName }),
      el('span', { class: 'muted', text: when }),
      note),
    el('div', { class: 'actions' },
      over ? el('span', { class: 'muted', text: 'Over' }) : joinButton(`/api/schedule/sessions/${encodeURIComponent(s.id)}/video`, label, note)));
}

/** Whether a group session has a TheraRoom video room one could join now or later. */
function hasRoom(g) {
  return g.session_type === 'virtual' && !g.meeting_link && g.status === 'approved';
}

/** One group session. */
export function groupItem(g) {
  const note = el('span', { class: 'row-note bad', 'aria-live': 'polite' });
  const facts = [dateTime(g.scheduled_at), `${g.participant_count} of ${g.max_participants} seats taken`,
    g.status === 'pending_approval' ? 'waiting for approval' : g.status === 'approved' ? '' : g.status,
    g.session_type === 'virtual' ? '' : 'in person'].filter(Boolean).join(' · ');
  const actions = el('div', { class: 'actions' });
  if (hasRoom(g)) actions.append(joinButton(`/api/group-sessions/${encodeURIComponent(g.id)}/video`, g.title, note));
  else if (g.meeting_link && /^https?:\/\//i.test(g.meeting_link)) actions.append(el('a', { class: 'btn small', href: g.meeting_link, target: '_blank', rel: 'noopener noreferrer', text: 'Meeting link' }));
  return el('li', { class: 'session', 'data-id': g.id },
    el('div', { class: 'info' }, el('strong', { text: g.title || 'Group session' }), el('span', { class: 'muted', text: facts }), note),
    actions);
}

/** Fill a list (and its empty-state note) with items. */
export function fill(listId, emptyId, items) {
  document.getElementById(listId).replaceChildren(...items);
  document.getElementById(emptyId).hidden = items.length > 0;
}

/**
 * Load a card's list: `load()` gives the items' data, `render` turns each into an <li>;
 * a failure shows `failText` (or the server's message) in the list. Then shows the card.
 * Why: every home page card loads the same way.
 */
export async function loadCard({ card, list, empty, load, render, failText }) {
  try {
    fill(list, empty, (await load()).map(render));
  } catch (e) {
    fill(list, empty, [el('li', { class: 'field-error', text: (e && e.message) || failText })]);
  }
  document.getElementById(card).hidden = false;
}

/** Upcoming, not cancelled group sessions from a group-sessions listing route. */
export async function upcomingGroups(path) {
  const data = await call(path);
  return ((data && data.sessions) || []).filter((g) => g.status !== 'cancelled');
}
