// client.js — entry point of /client.html, the client's home: upcoming booked sessions
// and joined group sessions, each with Join.
// Why: a client who signed in finds their next appointment and its video room here.

import { el, $ } from './dom.js';
import { start, call } from './session.js';
import { showMessage, mountWho } from './shell.js';
import { bookedSessions, bookedItem, groupItem, fill } from './agenda.js';

async function loadBooked() {
  try {
    const list = await bookedSessions({ start: new Date().toISOString() });
    fill('upcoming', 'upcoming-empty', list.map((s) => bookedItem(s, s.therapist_name || 'Your therapist', { dayToo: true })));
    $('upcoming-hint').hidden = list.length === 0;
  } catch (e) {
    fill('upcoming', 'upcoming-empty', [el('li', { class: 'field-error', text: (e && e.message) || 'Could not load your sessions.' })]);
  }
  $('upcoming-card').hidden = false;
}

async function loadGroups() {
  try {
    const data = await call('/api/group-sessions/my-sessions?upcoming=true');
    const list = ((data && data.sessions) || []).filter((g) => g.status !== 'cancelled');
    fill('groups', 'groups-empty', list.map(groupItem));
  } catch (e) {
    fill('groups', 'groups-empty', [el('li', { class: 'field-error', text: (e && e.message) || 'Could not load your group sessions.' })]);
  }
  $('groups-card').hidden = false;
}

async function main() {
  let me;
  try {
    me = await start({ roles: ['client'] });
  } catch (e) {
    showMessage((e && e.message) || 'Could not reach the server.');
    return;
  }
  if (!me) return;
  mountWho(me);
  if (me.organization) $('org-name').textContent = me.organization.name;
  await Promise.all([loadBooked(), loadGroups()]);
}

main();
