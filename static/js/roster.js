// roster.js — who else is in the room, what each of their tracks is (camera, microphone,
// screen), and whether a host is present.
// Why: several protocol messages (joined, participant_*, track_*, mute) update this one
// picture; the page renders from it instead of patching the DOM per message.

/** Roles that may admit people (PROTOCOL.md, "Waiting room"). */
export const HOST_ROLES = new Set(['therapist', 'organization', 'admin']);

export class Roster {
  constructor() {
    this.people = new Map(); // participant_id → Participant (everyone else)
    this.sources = new Map(); // track_id → source
    this.gone = new Set(); // track ids unpublished since the last subscriber description (whose section may linger until then)
    this.me = { participantId: null, personId: null };
  }

  /** From `joined`: everyone else, with their tracks. */
  reset(msg) {
    this.me = { participantId: msg.participant_id, personId: msg.person_id || null };
    this.people.clear();
    for (const p of msg.participants || []) if (p.participant_id !== msg.participant_id) this.upsert(p);
  }

  /** A participant (new, or an update of one we know). Returns false for ourselves. */
  upsert(p) {
    if (!p || !p.participant_id || p.participant_id === this.me.participantId) return false;
    this.people.set(p.participant_id, { ...p });
    for (const t of p.tracks || []) this.noteTrack(t);
    return true;
  }

  remove(pid) {
    this.people.delete(pid);
  }

  get(pid) {
    return this.people.get(pid);
  }

  ids() {
    return [...this.people.keys()];
  }

  noteTrack(track) {
    if (track && track.track_id) this.sources.set(track.track_id, track.source || (track.kind === 'audio' ? 'microphone' : 'camera'));
  }

  /** `track_published`: remember the source; the participant is evidently connected. */
  published(pid, track) {
    this.noteTrack(track);
    this.gone.delete(track.track_id);
    const p = this.people.get(pid);
    if (p) {
      p.connection = 'connected';
      p.tracks = [...(p.tracks || []).filter((t) => t.track_id !== track.track_id), track];
    }
  }

  unpublished(pid, trackId) {
    this.gone.add(trackId);
    const p = this.people.get(pid);
    if (p) p.tracks = (p.tracks || []).filter((t) => t.track_id !== trackId);
  }

  /** The announced source of a track id (undefined when never announced). */
  sourceOf(trackId) {
    return this.sources.get(trackId);
  }

  setConnection(pid, state) {
    const p = this.people.get(pid);
    if (p) p.connection = state;
  }

  setMuted(pid, kind, muted) {
    const p = this.people.get(pid);
    if (p) p[kind === 'audio' ? 'audio_muted' : 'video_muted'] = !!muted;
  }

  /** True when someone who may admit people (a therapist or practice staff) is here. */
  hostPresent() {
    return [...this.people.values()].some((p) => HOST_ROLES.has(p.role));
  }

  /** "other device" when this person is here more than once (or is us elsewhere). */
  hint(pid) {
    const p = this.people.get(pid);
    if (!p || !p.person_id) return '';
    if (p.person_id === this.me.personId) return 'your other device';
    const same = [...this.people.values()].filter((q) => q.person_id === p.person_id);
    if (same.length < 2) return '';
    return same[0].participant_id === pid ? '' : 'other device';
  }

  /** participant id → display name, for everyone known. */
  names() {
    return new Map([...this.people.values()].map((p) => [p.participant_id, p.display_name || 'Participant']));
  }

  /**
   * Group received tracks by participant: camera + microphone together, screen (+ its
   * audio) apart. remote: [{pid, trackId, kind, track}] from Call.remoteTracks().
   */
  media(remote) {
    const out = new Map();
    for (const pid of this.people.keys()) out.set(pid, { camera: [], screen: [] });
    for (const r of remote) {
      const m = out.get(r.pid);
      if (!m || this.gone.has(r.trackId)) continue;
      const src = this.sourceOf(r.trackId);
      if (src === 'screen' || src === 'screen_audio') m.screen.push(r.track);
      else if (src) m.camera.unshift(r.track); // announced first: a <video> shows its first video track
      else m.camera.push(r.track); // not announced yet (its track_published may follow)
    }
    return out;
  }

  /** The list for the test hook. */
  list() {
    return [...this.people.values()].map((p) => ({ participant_id: p.participant_id, person_id: p.person_id,
      display_name: p.display_name, role: p.role, connection: p.connection }));
  }
}
