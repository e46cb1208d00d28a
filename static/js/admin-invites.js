// admin-invites.js — the admin page's invite form (therapist, client or administrator;
// shows the one-time link with Copy) and the pending invitations with Withdraw.
// Why: invitations are how people get accounts; the link is shown once, right here.

import { el, $ } from './dom.js';
import { call } from './session.js';
import { messageFor } from './api.js';
import { copyText, dateTime } from './shell.js';

const ROLE_NAMES = { therapist: 'Therapist', client: 'Client', admin: 'Administrator', organization: 'Administrator' };
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** The organization whose invitations are shown, their API path, and the page's hook. */
let orgId = '';
let base = '';
let onInvitedHook = null;

async function loadTherapistChoices() {
  const sel = $('invite-therapist');
  sel.replaceChildren(el('option', { value: '', text: 'Not assigned yet' }));
  try {
    const data = await call(`/api/organizations/${encodeURIComponent(orgId)}/therapists?status=active`);
    for (const t of (data && data.therapists) || []) sel.append(el('option', { value: t.id, text: t.display_name || t.email }));
  } catch { /* the form still works without a therapist */ }
}

function pendingRow(inv) {
  const note = el('p', { class: 'row-note', 'aria-live': 'polite' });
  const btn = el('button', { class: 'btn small', type: 'button', text: 'Withdraw' });
  btn.setAttribute('aria-label', `Withdraw the invitation of ${inv.email}`);
  btn.addEventListener('click', async () => {
    btn.disabled = true;
    try {
      await call(`${base}/${encodeURIComponent(inv.id)}`, { method: 'DELETE' });
      await loadPending();
    } catch (e) {
      note.textContent = (e && e.message) || 'Could not withdraw it.';
      btn.disabled = false;
    }
  });
  return el('li', { class: 'person', 'data-id': inv.id, 'data-email': inv.email },
    el('div', { class: 'who-line' }, el('div', { class: 'info' },
      el('strong', { text: inv.display_name || inv.email }),
      el('span', { class: 'muted', text: `${inv.email} · ${ROLE_NAMES[inv.role] || inv.role} · valid until ${dateTime(inv.expires_at)}` }))),
    el('div', { class: 'controls-row' }, btn),
    note);
}

async function loadPending() {
  try {
    const data = await call(base);
    const list = (data && data.invitations) || [];
    $('pending').replaceChildren(...list.map(pendingRow));
    $('pending-empty').hidden = list.length > 0;
  } catch (e) {
    $('pending').replaceChildren(el('li', { class: 'field-error', text: (e && e.message) || 'Could not load the invitations.' }));
    $('pending-empty').hidden = true;
  }
}

/** The form's body, or a sentence saying what is missing. */
function formBody() {
  const role = $('invite-role').value;
  const display_name = $('invite-name').value.trim();
  const email = $('invite-email').value.trim();
  if (!display_name) return 'Please enter their name.';
  if (!EMAIL.test(email)) return 'Please enter a valid e-mail address.';
  const body = { email, display_name, role };
  if (role === 'client' && $('invite-therapist').value) body.therapist_id = $('invite-therapist').value;
  return body;
}

async function invite(ev) {
  ev.preventDefault();
  const body = formBody();
  $('invite-error').textContent = typeof body === 'string' ? body : '';
  if (typeof body === 'string') return;
  $('invite-btn').disabled = true;
  try {
    const inv = await call(base, { method: 'POST', body });
    $('invite-result-text').textContent = `Invitation for ${inv.display_name || inv.email} (${ROLE_NAMES[inv.role] || inv.role}) created. Send them this link; it works once, until ${dateTime(inv.expires_at)}.`;
    $('invite-link').value = inv.invite_url || '';
    $('invite-copy-note').textContent = '';
    $('invite-result').hidden = false;
    $('invite-name').value = '';
    $('invite-email').value = '';
    await loadPending();
    if (onInvitedHook) onInvitedHook(inv);
  } catch (e) {
    $('invite-error').textContent = e && e.code === 'email_taken' ? messageFor('email_taken') : (e && e.message) || 'Could not create the invitation.';
  } finally {
    $('invite-btn').disabled = false;
  }
}

/** The invitations of organization `ctx.orgId`; `onInvited` runs after each new one. */
export function createInvites(ctx, { onInvited } = {}) {
  orgId = ctx.orgId;
  base = `/api/organizations/${encodeURIComponent(orgId)}/invitations`;
  onInvitedHook = onInvited || null;
  $('invite-form').addEventListener('submit', invite);
  $('invite-role').addEventListener('change', () => {
    const client = $('invite-role').value === 'client';
    $('invite-therapist-row').hidden = !client;
    if (client) loadTherapistChoices();
  });
  $('invite-copy').addEventListener('click', async () => {
    const ok = await copyText($('invite-link').value);
    $('invite-copy-note').textContent = ok ? 'Link copied.' : 'Could not copy — select the link and copy it by hand.';
    if (!ok) $('invite-link').select();
  });

  return { loadPending };
}
