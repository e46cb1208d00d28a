//! Active speaker detection from the audio level each publisher's browser puts in its
//! audio packets (RFC 6464 `ssrc-audio-level`: 0 dBov loudest … 127 silence). Pure logic,
//! no time source of its own: the room records levels as packets pass and ticks the
//! detector every [`SPEAKER_TICK`].
//!
//! Each tick turns the packets of the last interval into one loudness score (0..1), and
//! smooths it: quick to rise, so a speaker is shown within a few hundred milliseconds,
//! slow to fall, so the indicator does not blink between words. A participant is speaking
//! while the smoothed score stays above [`SPEAKING_ON`], with hysteresis down to
//! [`SPEAKING_OFF`]. The ordered list of speakers (loudest first) is reported only when it
//! changes, and at most once per [`MIN_REPORT_INTERVAL`], so a busy group room does not
//! flood every client with events.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// How often the room evaluates its speakers.
pub const SPEAKER_TICK: Duration = Duration::from_millis(200);
/// Shortest interval between two reports of a room's speakers.
pub const MIN_REPORT_INTERVAL: Duration = Duration::from_millis(400);
/// Smoothed score at which a participant starts speaking (about −45 dBov).
pub const SPEAKING_ON: f32 = 0.3;
/// Smoothed score under which a speaking participant stops (about −50 dBov).
pub const SPEAKING_OFF: f32 = 0.2;
/// Share of a higher observation taken into the smoothed score per tick.
const RISE: f32 = 0.6;
/// Share of a lower observation taken into the smoothed score per tick.
const FALL: f32 = 0.25;
/// Level (dBov) that scores 1.0; anything louder also does.
const LOUD_DBOV: f32 = 10.0;
/// Level (dBov) that scores 0.0; anything quieter (background, silence) also does.
const QUIET_DBOV: f32 = 60.0;

/// Loudness score (0..1) of one RFC 6464 level: linear in dB between [`LOUD_DBOV`] and
/// [`QUIET_DBOV`].
pub fn score(level_dbov: u8) -> f32 {
    let db = f32::from(level_dbov.min(127));
    ((QUIET_DBOV - db) / (QUIET_DBOV - LOUD_DBOV)).clamp(0.0, 1.0)
}

/// The audio level in one RTP header extension element (RFC 6464, one byte: V bit and
/// 7-bit level); `None` when the element is empty.
pub fn level_from_extension(data: &[u8]) -> Option<u8> {
    data.first().map(|b| b & 0x7f)
}

/// One participant reported as speaking.
#[derive(Clone, Debug, PartialEq)]
pub struct Speaking<K> {
    /// Who.
    pub key: K,
    /// Smoothed loudness score, 0..1, rounded to two decimals.
    pub level: f32,
}

#[derive(Debug, Default)]
struct Loudness {
    sum: f32,
    packets: u32,
    smoothed: f32,
    speaking: bool,
}

impl Loudness {
    fn tick(&mut self) {
        let observed = if self.packets == 0 {
            0.0
        } else {
            self.sum / self.packets as f32
        };
        let rate = if observed > self.smoothed { RISE } else { FALL };
        self.smoothed += rate * (observed - self.smoothed);
        (self.sum, self.packets) = (0.0, 0);
        self.speaking = if self.speaking {
            self.smoothed >= SPEAKING_OFF
        } else {
            self.smoothed >= SPEAKING_ON
        };
    }
}

/// The speakers of one room, keyed by participant.
#[derive(Debug)]
pub struct SpeakerDetector<K> {
    loudness: HashMap<K, Loudness>,
    reported: Vec<K>,
    last_report: Option<Instant>,
}

impl<K> Default for SpeakerDetector<K> {
    fn default() -> Self {
        SpeakerDetector {
            loudness: HashMap::new(),
            reported: Vec::new(),
            last_report: None,
        }
    }
}

impl<K: Copy + Eq + Hash + Ord> SpeakerDetector<K> {
    /// One audio packet of `key` carried `level_dbov`.
    pub fn record(&mut self, key: K, level_dbov: u8) {
        let l = self.loudness.entry(key).or_default();
        l.sum += score(level_dbov);
        l.packets += 1;
    }

    /// `key` no longer publishes audio (or left): it stops speaking at the next tick.
    pub fn remove(&mut self, key: K) {
        self.loudness.remove(&key);
    }

    /// Whether anything is tracked or still reported (the room keeps ticking until the
    /// last speaker has been reported silent).
    pub fn is_idle(&self) -> bool {
        self.loudness.is_empty() && self.reported.is_empty()
    }

    /// Ends one interval; returns the new list of speakers, loudest first, when it differs
    /// from the one last reported and the report interval allows.
    pub fn tick(&mut self, now: Instant) -> Option<Vec<Speaking<K>>> {
        for l in self.loudness.values_mut() {
            l.tick();
        }
        let mut speaking: Vec<(K, f32)> = self
            .loudness
            .iter()
            .filter(|(_, l)| l.speaking)
            .map(|(k, l)| (*k, l.smoothed))
            .collect();
        // Loudest first; equal scores in key order, so the order is stable.
        speaking.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let keys: Vec<K> = speaking.iter().map(|(k, _)| *k).collect();
        if keys == self.reported {
            return None;
        }
        if self
            .last_report
            .is_some_and(|at| now.saturating_duration_since(at) < MIN_REPORT_INTERVAL)
        {
            return None; // reported on a later tick, if it still holds
        }
        self.reported = keys;
        self.last_report = Some(now);
        Some(
            speaking
                .into_iter()
                .map(|(key, level)| Speaking {
                    key,
                    level: (level.min(1.0) * 100.0).round() / 100.0,
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `packets` packets of `level` for `who`, then one tick `SPEAKER_TICK` later.
    fn interval(
        d: &mut SpeakerDetector<u32>,
        now: &mut Instant,
        levels: &[(u32, u8)],
    ) -> Option<Vec<Speaking<u32>>> {
        for _ in 0..10 {
            for &(who, level) in levels {
                d.record(who, level);
            }
        }
        *now += SPEAKER_TICK;
        d.tick(*now)
    }

    fn keys(list: &[Speaking<u32>]) -> Vec<u32> {
        list.iter().map(|s| s.key).collect()
    }

    #[test]
    fn scores_follow_the_level_in_db() {
        assert_eq!(score(0), 1.0);
        assert_eq!(score(10), 1.0);
        assert!((score(35) - 0.5).abs() < 1e-6);
        assert_eq!(score(60), 0.0);
        assert_eq!(score(127), 0.0);
        assert_eq!(
            level_from_extension(&[0x80 | 42]),
            Some(42),
            "V bit ignored"
        );
        assert_eq!(level_from_extension(&[]), None);
    }

    #[test]
    fn speech_is_reported_within_a_few_ticks_and_silence_ends_it() {
        let mut d = SpeakerDetector::default();
        let mut now = Instant::now();
        let mut started = None;
        for i in 0..5 {
            if let Some(list) = interval(&mut d, &mut now, &[(1, 25), (2, 127)]) {
                assert_eq!(keys(&list), vec![1]);
                assert!(list[0].level > SPEAKING_ON && list[0].level <= 1.0);
                started = Some(i);
                break;
            }
        }
        assert!(
            started.is_some_and(|i| i <= 1),
            "speaking within two ticks: {started:?}"
        );
        // Silence: not dropped at the first quiet tick (between words), but within 2 s.
        assert_eq!(interval(&mut d, &mut now, &[(1, 127)]), None);
        let mut ended = None;
        for i in 0..10 {
            if let Some(list) = interval(&mut d, &mut now, &[(1, 127)]) {
                assert!(list.is_empty());
                ended = Some(i);
                break;
            }
        }
        assert!(ended.is_some(), "silence ends the speaker");
        assert!(!d.is_idle(), "a silent publisher is still tracked");
    }

    #[test]
    fn a_short_pause_between_words_keeps_the_speaker() {
        let mut d = SpeakerDetector::default();
        let mut now = Instant::now();
        let mut reports = Vec::new();
        for round in 0..20 {
            let level = if round % 4 == 3 { 127 } else { 20 }; // 200 ms pause every 800 ms
            if let Some(list) = interval(&mut d, &mut now, &[(7, level)]) {
                reports.push(keys(&list));
            }
        }
        assert_eq!(reports, vec![vec![7]], "one report, no blinking");
    }

    #[test]
    fn background_noise_is_not_speech() {
        let mut d = SpeakerDetector::default();
        let mut now = Instant::now();
        for _ in 0..20 {
            assert_eq!(interval(&mut d, &mut now, &[(3, 55)]), None);
        }
    }

    #[test]
    fn loudest_first_and_reports_are_rate_limited() {
        let mut d = SpeakerDetector::default();
        let mut now = Instant::now();
        let first = interval(&mut d, &mut now, &[(1, 30), (2, 15)]);
        assert_eq!(first.as_deref().map(keys), Some(vec![2, 1]));
        // The order flips at once, but the next report waits for the interval.
        let mut flipped = None;
        let mut ticks = 0;
        while flipped.is_none() && ticks < 10 {
            flipped = interval(&mut d, &mut now, &[(1, 5), (2, 40)]);
            ticks += 1;
        }
        assert_eq!(flipped.as_deref().map(keys), Some(vec![1, 2]));
        assert!(
            ticks as u32 * SPEAKER_TICK >= MIN_REPORT_INTERVAL,
            "reported after {ticks} ticks"
        );
    }

    #[test]
    fn a_removed_participant_stops_speaking() {
        let mut d = SpeakerDetector::default();
        let mut now = Instant::now();
        assert!(interval(&mut d, &mut now, &[(4, 20)]).is_some());
        d.remove(4);
        now += MIN_REPORT_INTERVAL;
        assert_eq!(d.tick(now), Some(vec![]));
        assert!(d.is_idle());
    }
}
