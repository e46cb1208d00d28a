// quality.js — "your connection is weak" from the call's own WebRTC stats.
// Why: frozen video with no explanation makes people think the other side left; a
// plain indicator with a hint tells them it is the network, and what to try.

/** Loss ratio (0..1) over one sample above which the connection counts as poor. */
export const POOR_LOSS = 0.08;
/** Round-trip time (seconds) above which the connection counts as poor. */
export const POOR_RTT = 0.5;
const SAMPLE_MS = 2000;

export const POOR_HINT = 'Video may freeze or lag. Move closer to your Wi-Fi router, close other apps that use the internet, or turn your camera off.';

export class QualityMonitor {
  /**
   * @param {{qualityCounters: () => Promise<object>}} call
   * @param {(state: {level: 'good'|'poor', loss: number, rtt: number|null}) => void} onChange
   */
  constructor(call, onChange) {
    this.call = call;
    this.onChange = onChange;
    this.timer = null;
    this.prev = null;
    this.bad = 0;
    this.good = 0;
    this.state = { level: 'good', loss: 0, rtt: null };
  }

  start() {
    this.stop();
    this.prev = null;
    this.timer = setInterval(() => this.sample().catch(() => {}), SAMPLE_MS);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
  }

  async sample() {
    const c = await this.call.qualityCounters();
    const p = this.prev;
    this.prev = c;
    if (!p) return;
    const lost = Math.max(0, c.lostUp - p.lostUp) + Math.max(0, c.lostDown - p.lostDown);
    const total = Math.max(0, c.sent - p.sent) + Math.max(0, c.received - p.received) + lost;
    const loss = total > 20 ? lost / total : 0;
    const poor = loss > POOR_LOSS || (c.rtt != null && c.rtt > POOR_RTT);
    if (poor) { this.bad += 1; this.good = 0; } else { this.good += 1; this.bad = 0; }
    let level = this.state.level;
    if (level === 'good' && this.bad >= 2) level = 'poor';
    if (level === 'poor' && this.good >= 3) level = 'good';
    const changed = level !== this.state.level;
    this.state = { level, loss: Math.round(loss * 1000) / 1000, rtt: c.rtt };
    if (changed) this.onChange(this.state);
  }
}
