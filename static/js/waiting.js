// waiting.js — the waiting room, both sides: what a waiting person sees, and the hosts'
// live queue with Admit / Decline / Admit all (signaling/PROTOCOL.md, "Waiting room").
// Why: join.js routes the protocol messages here; this module owns the two views.

import { el, $, ago } from './dom.js';

/** The waiting person's view: their preview, their name, who lets them in. */
export class WaitingView {
  constructor() {
    this.title = $('waiting-title');
    this.who = $('waiting-who');
    this.presence = $('waiting-presence');
  }

  /** @param {{therapist_name?: string, host_present?: boolean}} msg the `waiting` message */
  show(msg, myName, fallbackTherapist) {
    const therapist = msg.therapist_name || fallbackTherapist || 'Your therapist';
    this.title.textContent = myName ? `Hello, ${myName}` : 'You are in the waiting room';
    this.who.textContent = `${therapist} will let you in.`;
    this.presence.textContent = msg.host_present
      ? `${therapist} is in the session and will let you in soon.`
      : `${therapist} has not joined yet. Please stay on this page.`;
    this.presence.classList.toggle('present', !!msg.host_present);
  }
}

/** The hosts' queue of waiting people. */
export class HostQueue {
  /**
   * @param {HTMLElement} root the panel (filled here)
   * @param {object} o
   * @param {(pid: string) => void} o.admit
   * @param {(pid: string) => void} o.decline
   * @param {() => void} o.admitAll
   * @param {(pid: string) => void} o.message write privately to a waiting person
   */
  constructor(root, o) {
    this.root = root;
    this.o = o;
    this.queue = [];
    this.count = el('span', { class: 'queue-count' });
    this.announce = el('p', { class: 'offscreen', role: 'status', 'aria-live': 'polite' });
    this.list = el('ul', { class: 'queue-list', 'aria-label': 'People waiting' });
    this.allBtn = el('button', { class: 'btn small primary', type: 'button', text: 'Admit all', hidden: true,
      onclick: () => this.o.admitAll() });
    root.replaceChildren(
      el('div', { class: 'queue-head' }, el('h2', { text: 'Waiting room' }, this.count), this.allBtn),
      this.list);
    document.body.append(this.announce); // outside the panel: it is announced even while the panel appears
    this.timer = setInterval(() => this.refreshTimes(), 20000);
    this.render();
  }

  /** The whole queue (`waiting_room.waiting`). */
  update(waiting) {
    const before = new Set(this.queue.map((w) => w.participant_id));
    this.queue = Array.isArray(waiting) ? waiting.slice() : [];
    const fresh = this.queue.filter((w) => !before.has(w.participant_id));
    if (fresh.length) {
      this.announce.textContent = fresh.length === 1
        ? `${fresh[0].display_name} is waiting to be let in.`
        : `${fresh.length} people are waiting to be let in.`;
    }
    this.render();
  }

  render() {
    const n = this.queue.length;
    this.count.textContent = n ? ` (${n})` : '';
    this.allBtn.hidden = n < 2;
    this.root.hidden = n === 0;
    this.list.replaceChildren(...this.queue.map((w) => this.item(w)));
  }

  item(w) {
    const name = w.display_name || 'Someone';
    const since = Date.parse(w.since);
    const when = el('span', { class: 'queue-since muted', 'data-since': String(since),
      text: isNaN(since) ? '' : `waiting since ${ago(since)}` });
    return el('li', { class: 'queue-item', 'data-pid': w.participant_id },
      el('div', { class: 'queue-who' }, el('strong', { text: name }),
        el('span', { class: 'muted', text: w.is_guest ? ' · guest' : '' }), when),
      el('div', { class: 'queue-actions' },
        el('button', { class: 'btn small primary', type: 'button', text: 'Admit', 'aria-label': `Admit ${name}`,
          onclick: () => this.o.admit(w.participant_id) }),
        el('button', { class: 'btn small', type: 'button', text: 'Decline', 'aria-label': `Decline ${name}`,
          onclick: () => this.o.decline(w.participant_id) }),
        el('button', { class: 'btn small', type: 'button', text: 'Message', 'aria-label': `Message ${name}`,
          onclick: () => this.o.message(w.participant_id) })));
  }

  refreshTimes() {
    for (const n of this.list.querySelectorAll('.queue-since')) {
      const since = Number(n.dataset.since);
      if (!isNaN(since)) n.textContent = `waiting since ${ago(since)}`;
    }
  }

  /** Test hook: the queue as data. */
  snapshot() {
    return this.queue.map((w) => ({ ...w }));
  }
}
