// home.js — entry point of /home.html, the therapist's home: start an instant session
// (share link, then the call), today's booked sessions and upcoming groups with Join,
// and whether new video sessions are allowed (and why not).
// Why: what a therapist needs right after signing in, on a phone as on a desktop.

import { $ } from './dom.js';
import { start, call, reloadMe, accessToken } from './session.js';
import { showMessage, clearMessage, mountWho, copyText, absolute, joinAsSelf } from './shell.js';
import { todayRange, bookedSessions, bookedItem, groupItem, loadCard, upcomingGroups } from './agenda.js';

/** Banner + Start button from `me.therapist.video_access` ({is_enabled, reason, message}). */
function showAccess(me) {
  const access = (me && me.therapist && me.therapist.video_access) || {};
  const allowed = access.is_enabled !== false && access.allowed !== false;
  $('access-banner').hidden = allowed;
  $('access-reason').textContent = allowed ? '' : (access.message || 'Please contact your organization administrator.');
  $('start-btn').disabled = !allowed;
  $('start-btn').title = allowed ? '' : 'New video sessions are switched off for you';
  document.body.dataset.videoAccess = allowed ? 'enabled' : (access.reason || access.code || 'refused');
}

let createdUrl = null;

function showCreated(s) {
  const url = s.join_url || `/join/${encodeURIComponent(s.share_token)}`;
  createdUrl = url;
  $('created-title').textContent = `“${s.session_name}” is ready`;
  $('share-link').value = absolute(url);
  $('copy-note').textContent = '';
  $('join-now').href = joinAsSelf(url, accessToken());
  $('created').hidden = false;
}

async function startSession(ev) {
  ev.preventDefault();
  const name = $('session-name').value.trim() || 'Instant session';
  $('start-btn').disabled = true;
  clearMessage();
  try {
    showCreated(await call('/api/sessions', { method: 'POST', body: { session_name: name, waiting_room: $('waiting-input').checked } }));
    $('start-btn').disabled = false;
  } catch (e) {
    // The server's own sentence (e.g. therapist_disabled says whom to ask).
    showMessage((e && e.message) || 'Could not start the session.');
    $('created').hidden = true;
    try { showAccess(await reloadMe()); } catch { $('start-btn').disabled = false; }
  }
}

function loadToday() {
  $('today-date').textContent = new Date().toLocaleDateString([], { weekday: 'long', day: 'numeric', month: 'long' });
  return loadCard({
    card: 'today-card', list: 'today', empty: 'today-empty',
    load: () => bookedSessions(todayRange()),
    render: (s) => bookedItem(s, s.client_name || 'Client', { onMoved: loadToday }),
    failText: 'Could not load today’s sessions.',
  });
}

function loadGroups() {
  return loadCard({
    card: 'groups-card', list: 'groups', empty: 'groups-empty',
    load: () => upcomingGroups('/api/group-sessions/therapist/sessions?upcoming=true'),
    render: groupItem,
    failText: 'Could not load your groups.',
  });
}

async function main() {
  let me;
  try {
    me = await start({ roles: ['therapist'] });
  } catch (e) {
    showMessage((e && e.message) || 'Could not reach the server.');
    return;
  }
  if (!me) return;
  mountWho(me);
  if (me.organization) $('org-name').textContent = me.organization.name;
  showAccess(me);
  $('start-card').hidden = false;
  $('more').hidden = false;
  $('start-form').addEventListener('submit', startSession);
  $('copy-btn').addEventListener('click', async () => {
    const ok = await copyText($('share-link').value);
    $('copy-note').textContent = ok ? 'Link copied.' : 'Could not copy — select the link and copy it by hand.';
    if (!ok) $('share-link').select();
  });
  // The token renews every few minutes: put the current one in the link when it is used.
  $('join-now').addEventListener('click', () => { if (createdUrl) $('join-now').href = joinAsSelf(createdUrl, accessToken()); });
  await Promise.all([loadToday(), loadGroups()]);
}

main();
