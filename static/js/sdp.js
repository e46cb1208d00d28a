// sdp.js — the few facts the client reads out of session descriptions.
// Why: the protocol names tracks by their `a=msid` (stream id = publisher's participant
// id, track id = announced `track_id`); reading it per `a=mid` ties each transceiver to
// its announced track even when the browser reuses a transceiver for another track.

/**
 * Map of mid → {streamId, trackId} for every media section with an `a=msid` line.
 * @param {string} sdp
 * @returns {Map<string, {streamId: string, trackId: string}>}
 */
export function msidByMid(sdp) {
  const out = new Map();
  const sections = String(sdp || '').split(/\r?\nm=/).slice(1);
  for (const section of sections) {
    const mid = (section.match(/\r?\na=mid:(\S+)/) || [])[1];
    const msid = section.match(/\r?\na=msid:(\S+) (\S+)/);
    if (mid != null && msid) out.set(mid, { streamId: msid[1], trackId: msid[2] });
  }
  return out;
}
