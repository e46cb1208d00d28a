// invite.js — entry point of /invite.html#token=…: shows who is invited where, sets the
// password (accepting the invitation signs the person in), then the role's home.
// Why: the only way a new person gets an account. The token lives in the fragment (never
// sent to a server log) and is taken out of the address bar as soon as it is read.

import { api, messageFor } from './api.js';
import { $ } from './dom.js';
import { acceptInvitation, homeFor } from './session.js';
import { showMessage, clearMessage, dateTime } from './shell.js';

const ROLE_NAMES = { therapist: 'Therapist', client: 'Client', admin: 'Administrator', organization: 'Administrator' };
const MIN = 10;
const MAX = 128;

/** The invitation token from `#token=…`, removed from the address bar. */
function takeToken() {
  const t = new URLSearchParams(location.hash.replace(/^#/, '')).get('token');
  if (location.hash) history.replaceState(history.state, '', location.pathname + location.search);
  return t ? t.trim() : null;
}

/** A refusal as a clear sentence (our wording for the invitation codes). */
function sentence(e) {
  if (['invitation_used', 'invitation_expired', 'invitation_not_found', 'weak_password'].includes(e.code)) return messageFor(e.code);
  return e.message || messageFor('internal');
}

/** The invitation can no longer be used: say so, hide the form, offer sign-in. */
function dead(e) {
  showMessage(sentence(e));
  $('invite').hidden = true;
  $('signin-link').hidden = false;
}

function show(inv) {
  const role = ROLE_NAMES[inv.role] || inv.role;
  $('invite-title').textContent = inv.display_name ? `Welcome, ${inv.display_name}` : 'Welcome';
  $('invite-who').textContent = `You are invited to join ${inv.organization_name} on TheraRoom as ${/^[AEIOU]/.test(role) ? 'an' : 'a'} ${role.toLowerCase()}.`;
  $('invite-email').textContent = inv.email;
  $('username').value = inv.email;
  $('invite-role').textContent = role;
  $('invite-expires').textContent = dateTime(inv.expires_at) || '—';
  $('invite').hidden = false;
  $('password').focus();
}

/** The form's own checks; returns a sentence or ''. */
function check(p1, p2) {
  if (p1.length < MIN || p1.length > MAX) return `The password must be ${MIN} to ${MAX} characters long (it has ${p1.length}).`;
  if (p1 !== p2) return 'The two passwords are not the same. Please type them again.';
  return '';
}

async function main() {
  const token = takeToken();
  if (!token) {
    $('loading').hidden = true;
    dead({ code: 'invitation_not_found' });
    return;
  }
  let inv;
  try {
    inv = await api('/api/invitations/inspect', { method: 'POST', body: { token } });
  } catch (e) {
    $('loading').hidden = true;
    if (e.code === 'network' || e.status >= 500) showMessage(sentence(e)); else dead(e);
    return;
  }
  $('loading').hidden = true;
  show(inv);
  $('password-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const p1 = $('password').value;
    const problem = check(p1, $('password2').value);
    $('form-error').textContent = problem;
    if (problem) return;
    $('accept-btn').disabled = true;
    clearMessage();
    try {
      const me = await acceptInvitation(token, p1);
      location.assign(homeFor((me && me.role) || inv.role));
    } catch (e) {
      $('accept-btn').disabled = false;
      if (e.code === 'weak_password') { $('form-error').textContent = sentence(e); return; }
      if (['invitation_used', 'invitation_expired', 'invitation_not_found'].includes(e.code)) { dead(e); return; }
      showMessage(sentence(e));
    }
  });
}

main();
