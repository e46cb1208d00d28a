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

/**
 * Booked sessions (GET /api/schedule/sessions) between two instants, every status:
 * cancelled ones are shown struck through, not as upcoming (see bookedItem).
 */
export async function bookedSessions({ start, end }) {
  const q = new URLSearchParams({ start });
  if (end) q.set('end', end);
  const data = await call(`/api/schedule/sessions?${q}`);
  return (data && data.sessions) || [];
}

/** Sessions still to happen (not cancelled, not completed): what "upcoming" counts. */
export function stillScheduled(list) {
  return list.filter((s) => !s.status || s.status === 'scheduled');
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

/** "was 3 Dec 2026, 10:00" for a session moved to another slot ('' if never moved). */
function movedFrom(s) {
  return s.rescheduled_at && s.previous_start ? `was ${dateTime(s.previous_start)}` : '';
}

/** "2026-12-03T09:30" in the viewer's time zone, as a datetime-local input takes it. */
function localInputValue(iso) {
  const d = new Date(iso);
  if (isNaN(d)) return '';
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/**
 * A small form to move a session: a new start (its length stays), through a reschedule
 * hold and its confirmation. A taken slot shows the server's free suggestions.
 * Why: the therapist's most common change to a booking, without leaving the home page.
 */
function moveForm(s, note, onMoved) {
  const input = el('input', { type: 'datetime-local', required: '', value: localInputValue(s.start) });
  input.setAttribute('aria-label', 'New start');
  const form = el('form', { class: 'row move-form', hidden: '' }, input,
    el('button', { class: 'btn small primary', type: 'submit', text: 'Move here' }));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    note.textContent = '';
    const start = new Date(input.value);
    if (isNaN(start)) { note.textContent = 'Pick a new date and time.'; return; }
    try {
      const hold = await call('/api/schedule/holds', { method: 'POST', body: {
        session_id: s.id, therapist_id: s.therapist_id, client_id: s.client_id, start: start.toISOString(),
        time_zone: s.time_zone } });
      await call(`/api/schedule/holds/${encodeURIComponent(hold.hold_key)}/confirm`, { method: 'POST' });
      if (onMoved) onMoved();
    } catch (e) {
      const free = ((e && e.body && e.body.suggestions) || []).map((x) => dateTime(x.start));
      note.textContent = ((e && e.message) || 'Could not move the session.') + (free.length ? ` Free: ${free.join(', ')}.` : '');
    }
  });
  return form;
}

/**
 * One booked session; `withName` is who the viewer meets (client or therapist name).
 * Cancelled sessions are struck through and labelled, completed ones say so, moved
 * ones carry a "Rescheduled" marker with their old time; `onMoved` (therapists) adds a
 * Move action and is called after a move.
 */
export function bookedItem(s, withName, { dayToo = false, onMoved = null } = {}) {
  const when = dayToo ? `${dateTime(s.start)} – ${timeOnly(s.end)}` : `${timeOnly(s.start)} – ${timeOnly(s.end)}`;
  const note = el('span', { class: 'row-note bad', 'aria-live': 'polite' });
  const label = `session with ${withName} at ${timeOnly(s.start)}`;
  const cancelled = s.status === 'cancelled';
  const done = s.status === 'completed';
  const over = new Date(s.end).getTime() <= Date.now();
  const moved = movedFrom(s);
  const info = el('div', { class: 'info' },
    el('strong', { text: withName }),
    cancelled ? el('s', { class: 'muted', text: when }) : el('span', { class: 'muted', text: when }));
  if (moved && !cancelled) info.append(el('span', { class: 'muted moved' }, el('span', { class: 'badge', text: 'Rescheduled' }), ` ${moved}`));
  info.append(note);
  const actions = el('div', { class: 'actions' });
  if (cancelled) actions.append(el('span', { class: 'badge off', text: 'Cancelled' }));
  else if (done) actions.append(el('span', { class: 'muted', text: 'Done' }));
  else if (over) actions.append(el('span', { class: 'muted', text: 'Over' }));
  else actions.append(joinButton(`/api/schedule/sessions/${encodeURIComponent(s.id)}/video`, label, note));
  let form = null;
  if (onMoved && !cancelled && !done && !over) {
    form = moveForm(s, note, onMoved);
    const toggle = el('button', { class: 'btn small', type: 'button', text: 'Move' });
    toggle.setAttribute('aria-label', `Move ${label}`);
    toggle.addEventListener('click', () => { form.hidden = !form.hidden; });
    actions.append(toggle);
  }
  const state = cancelled ? ' cancelled' : over || done ? ' ended' : moved ? ' rescheduled' : '';
  return el('li', { class: 'session' + state, 'data-id': s.id, 'data-status': s.status || 'scheduled' },
    info, actions, ...(form ? [form] : []));
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
