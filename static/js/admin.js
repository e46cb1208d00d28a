// admin.js — entry point of /admin.html, the organization administrators' back office:
// the organization's video switch, people (admin-people.js), invitations
// (admin-invites.js), search and filters, and the activity log (admin-audit.js).
// Why: a practice runs itself from here without a developer: invite, switch video on
// and off, deactivate people.

import { $ } from './dom.js';
import { start, call } from './session.js';
import { showMessage, mountWho } from './shell.js';
import { createPeople } from './admin-people.js';
import { createInvites } from './admin-invites.js';
import { createAudit } from './admin-audit.js';

const ADMIN_ROLES = ['organization', 'admin', 'super_admin'];

/** The organization this page manages: the admin's own, or `?org=` for a super admin. */
function organizationId(me) {
  if (me.organization) return me.organization.id;
  return new URLSearchParams(location.search).get('org');
}

async function orgSwitch(orgId) {
  const path = `/api/organizations/${encodeURIComponent(orgId)}/video-settings`;
  const box = $('org-video');
  const note = $('org-video-note');
  const paint = (v) => {
    box.checked = !!v.video_sessions_enabled;
    note.textContent = v.video_sessions_enabled
      ? 'On: therapists can start and join video sessions.'
      : 'Off: no one in the organization can start or join new video sessions. Running calls are not cut.';
  };
  const v = await call(path);
  paint(v);
  box.addEventListener('change', async () => {
    const on = box.checked;
    box.disabled = true;
    try {
      paint(await call(path, { method: 'PUT', body: { video_sessions_enabled: on } }));
    } catch (e) {
      box.checked = !on;
      note.textContent = (e && e.message) || 'Could not change it.';
    } finally {
      box.disabled = false;
    }
  });
  return v;
}

function wireFilters(people) {
  let timer = null;
  $('filters').addEventListener('submit', (ev) => { ev.preventDefault(); people.load(); });
  $('filter-q').addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(() => people.load(), 250); });
  $('filter-status').addEventListener('change', () => people.load());
  $('filter-video').addEventListener('change', () => people.load());
}

async function open(me, orgId) {
  let settings;
  try {
    settings = await orgSwitch(orgId);
  } catch (e) {
    showMessage((e && e.message) || 'Could not open this organization.');
    return;
  }
  const name = (me.organization && me.organization.name) || orgId;
  $('org-name').textContent = name;
  document.title = `${name} · TheraRoom`;
  const controlled = !!settings.theraptrack_controlled;
  $('org-controlled').textContent = controlled
    ? 'Each therapist also has their own video switch and blog permission below.'
    : 'This organization uses the organization switch only (no per-therapist switches).';
  const ctx = { orgId, controlled };
  const people = createPeople(ctx);
  const invites = createInvites(ctx, { onInvited: () => people.load() });
  const audit = createAudit(ctx, () => new Map([...people.names(), [me.id, me.display_name || me.email]]));
  wireFilters(people);
  $('admin').hidden = false;
  await Promise.all([people.load(), invites.loadPending()]);
  await audit.load();
  document.body.dataset.ready = '1';
}

async function main() {
  let me;
  try {
    me = await start({ roles: ADMIN_ROLES });
  } catch (e) {
    showMessage((e && e.message) || 'Could not reach the server.');
    return;
  }
  if (!me) return;
  mountWho(me);
  const orgId = organizationId(me);
  if (!orgId) {
    $('pick-org').hidden = false;
    $('pick-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const id = $('pick-id').value.trim();
      if (id) location.assign(`/admin.html?org=${encodeURIComponent(id)}`);
    });
    return;
  }
  await open(me, orgId);
}

main();
