// expiry.js — "This session ends in N minutes" during a session's last ten minutes.
// Why: sessions have a fixed end (`session.expires_at`); being cut off mid-sentence is
// worse than a calm heads-up.

const WARN_MS = 10 * 60 * 1000;

export class ExpiryBanner {
  /** @param {HTMLElement} node a role="status" element, hidden while not needed */
  constructor(node) {
    this.node = node;
    this.at = NaN;
    this.timer = null;
    this.lastText = '';
  }

  /** Start watching an RFC 3339 end time (null/invalid: nothing to show). */
  watch(expiresAt) {
    this.at = Date.parse(expiresAt || '');
    clearInterval(this.timer);
    this.timer = setInterval(() => this.render(), 10000);
    this.render();
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    this.node.hidden = true;
  }

  /** The banner text for `now`, or '' outside the last ten minutes. */
  textAt(now) {
    if (isNaN(this.at)) return '';
    const left = this.at - now;
    if (left > WARN_MS) return '';
    if (left <= 0) return 'The time for this session is over.';
    const min = Math.ceil(left / 60000);
    return min <= 1 ? 'This session ends in less than a minute.' : `This session ends in ${min} minutes.`;
  }

  render() {
    const text = this.textAt(Date.now());
    if (text !== this.lastText) this.node.textContent = text; // rewrite only on change: one announcement per step
    this.lastText = text;
    this.node.hidden = !text;
  }
}
