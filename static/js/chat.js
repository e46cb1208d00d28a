// chat.js — the chat panel: messages with sender and time, a text box, who to send to,
// inline errors, and an unread count while the panel is closed.
// Why: chat is plain text over the signaling socket (signaling/PROTOCOL.md, "Chat"); this
// module owns its presentation. Text is only ever set with textContent, never as HTML.

import { el, clock } from './dom.js';

/** Same limit as the server: trimmed text of 1–1,000 characters. */
export const MAX_CHAT_CHARS = 1000;

const ERRORS = {
  invalid_chat: 'Messages must be 1 to 1,000 characters.',
  rate_limited: 'You are sending messages too fast. Wait a moment and try again.',
  participant_not_found: 'That person is no longer here, so the message was not delivered.',
  not_connected: 'Not connected right now. The message was not sent.',
};

/** A local reason a message may not be sent, or '' when it may. */
export function chatProblem(text) {
  const t = String(text || '').trim();
  if (!t || [...t].length > MAX_CHAT_CHARS) return 'invalid_chat';
  return '';
}

export class ChatPanel {
  /**
   * @param {HTMLElement} container the panel's element (filled here)
   * @param {object} o
   * @param {(text: string, to?: string) => boolean} o.send false when not connected
   * @param {(unread: number) => void} [o.onUnread]
   * @param {(open: boolean) => void} [o.onToggle]
   */
  constructor(container, { send, onUnread = () => {}, onToggle = () => {} }) {
    this.root = container;
    this.o = { send, onUnread, onToggle };
    this.messages = [];
    this.unread = 0;
    this.isOpen = false;
    this.lastSent = null;
    this.title = el('h2', { id: 'chat-title', text: 'Chat' });
    this.closeBtn = el('button', { class: 'btn small chat-close', type: 'button', 'aria-label': 'Close chat', text: 'Close',
      onclick: () => this.setOpen(false) });
    this.list = el('ol', { class: 'chat-log', 'aria-live': 'polite', 'aria-relevant': 'additions', 'aria-label': 'Messages' });
    this.empty = el('p', { class: 'note chat-empty', text: 'No messages yet.' });
    this.to = el('select', { id: 'chat-to', 'aria-label': 'Send to' });
    this.toRow = el('div', { class: 'chat-to-row', hidden: true }, el('label', { for: 'chat-to', text: 'To' }), this.to);
    this.input = el('input', { id: 'chat-input', type: 'text', maxlength: String(MAX_CHAT_CHARS), autocomplete: 'off',
      placeholder: 'Write a message', 'aria-label': 'Message' });
    this.error = el('p', { class: 'field-error chat-error', 'aria-live': 'assertive' });
    const form = el('form', { class: 'chat-form', novalidate: true, onsubmit: (ev) => {
      ev.preventDefault();
      if (this.sendText(this.input.value, this.to.value || undefined).ok) this.input.value = '';
      this.input.focus();
    } }, this.input, el('button', { class: 'btn primary', type: 'submit', text: 'Send' }));
    container.replaceChildren(
      el('div', { class: 'chat-head' }, this.title, this.closeBtn),
      el('p', { class: 'note chat-note', text: 'Messages are not saved. They reach only the people here now.' }),
      this.empty, this.list, this.toRow, form, this.error);
    container.setAttribute('aria-labelledby', 'chat-title');
    container.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape' && this.isOpen && document.body.classList.contains('in-call')) {
        this.setOpen(false);
        const btn = document.getElementById('chat-btn');
        if (btn) btn.focus();
      }
    });
  }

  /**
   * Who a message may go to besides "everyone" (the default, value ''):
   * [{id, label}]. `everyoneLabel` names the default; null hides it (then the first
   * entry is the default). The select is shown only when there is a choice.
   */
  setRecipients(list, everyoneLabel = 'Everyone in the call') {
    const keep = this.to.value;
    const options = [];
    if (everyoneLabel) options.push(el('option', { value: '', text: everyoneLabel }));
    for (const r of list) options.push(el('option', { value: r.id, text: r.label }));
    this.to.replaceChildren(...options);
    if ([...this.to.options].some((o) => o.value === keep)) this.to.value = keep;
    this.toRow.hidden = options.length < 2;
  }

  /** Preselect a private recipient and open the panel (e.g. "Message" in the queue). */
  writeTo(pid) {
    if ([...this.to.options].some((o) => o.value === pid)) this.to.value = pid;
    this.setOpen(true);
    this.input.focus();
  }

  /** Validate and send; shows our own message at once. Returns {ok, error?}. */
  sendText(text, to) {
    this.error.textContent = '';
    const problem = chatProblem(text);
    if (problem) return this.fail(problem);
    const clean = String(text).trim();
    const msg = { type: 'chat', text: clean };
    if (to) msg.to = to;
    if (!this.o.send(msg)) return this.fail('not_connected');
    const toLabel = to ? ([...this.to.options].find((o) => o.value === to) || {}).textContent || 'one person' : '';
    this.lastSent = this.add({ from: null, from_name: 'You', text: clean, private: !!to, to, to_name: toLabel,
      sent_at: new Date().toISOString(), mine: true });
    return { ok: true };
  }

  fail(code) {
    this.error.textContent = ERRORS[code] || 'The message was not sent.';
    return { ok: false, error: code };
  }

  /** The server refused a chat message (invalid_chat, rate_limited, participant_not_found). */
  refused(code) {
    this.fail(code);
    if (this.lastSent && !this.lastSent.failed) {
      this.lastSent.failed = true;
      this.lastSent.node.classList.add('failed');
      this.lastSent.node.append(el('span', { class: 'chat-failed', text: 'Not delivered' }));
    }
  }

  /** A `chat` message from the server. */
  receive(m) {
    this.add({ from: m.from, from_name: m.from_name || 'Someone', text: String(m.text || ''), private: !!m.private,
      sent_at: m.sent_at || new Date().toISOString(), mine: false });
    if (!this.isOpen) {
      this.unread += 1;
      this.o.onUnread(this.unread);
    }
  }

  add(m) {
    const who = m.mine
      ? (m.private ? `You to ${m.to_name}` : 'You')
      : (m.private ? `${m.from_name} (to you only)` : m.from_name);
    const node = el('li', { class: 'chat-msg' + (m.mine ? ' mine' : '') + (m.private ? ' private' : '') },
      el('div', { class: 'chat-meta' }, el('span', { class: 'chat-from', text: who }),
        el('time', { datetime: m.sent_at, text: clock(m.sent_at) })),
      el('p', { class: 'chat-text', text: m.text }));
    this.list.append(node);
    this.empty.hidden = true;
    node.scrollIntoView({ block: 'nearest' });
    const entry = { ...m, node };
    this.messages.push(entry);
    return entry;
  }

  /** Open or close the panel; `focus` puts the cursor in the text box (opened by the person). */
  setOpen(open, { focus = false } = {}) {
    this.isOpen = open;
    this.root.classList.toggle('open', open);
    if (open && focus) this.input.focus();
    if (open) {
      this.unread = 0;
      this.o.onUnread(0);
    }
    this.o.onToggle(open);
  }

  /** The log as plain data (test hook). */
  log() {
    return this.messages.map(({ from, from_name, text, private: p, sent_at, mine, to, failed }) =>
      ({ from, from_name, text, private: p, sent_at, mine, to: to || null, failed: !!failed }));
  }
}
