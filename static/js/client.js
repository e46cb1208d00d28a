// client.js — entry point of /client.html, the client's home: upcoming booked sessions
// and joined group sessions, each with Join.
// Why: a client who signed in finds their next appointment and its video room here.

import { $ } from './dom.js';
import { start } from './session.js';
import { showMessage, mountWho } from './shell.js';
import { bookedSessions, bookedItem, groupItem, loadCard, upcomingGroups, stillScheduled } from './agenda.js';

async function loadBooked() {
  let count = 0;
  await loadCard({
    card: 'upcoming-card', list: 'upcoming', empty: 'upcoming-empty',
    load: async () => { const list = await bookedSessions({ start: new Date().toISOString() }); count = stillScheduled(list).length; return list; },
    render: (s) => bookedItem(s, s.therapist_name || 'Your therapist', { dayToo: true }),
    failText: 'Could not load your sessions.',
  });
  $('upcoming-hint').hidden = count === 0;
}

function loadGroups() {
  return loadCard({
    card: 'groups-card', list: 'groups', empty: 'groups-empty',
    load: () => upcomingGroups('/api/group-sessions/my-sessions?upcoming=true'),
    render: groupItem,
    failText: 'Could not load your group sessions.',
  });
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
