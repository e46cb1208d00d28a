//! Pure subscription planning: who subscribes to what, and when the server may send the
//! next subscriber offer.

use std::collections::HashSet;

/// A published track as seen by the planner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedTrack {
    /// Room-unique track id.
    pub track_id: String,
    /// Publisher participant id.
    pub publisher: String,
}

/// Tracks `subscriber` must receive: every published track of the room except its own.
pub fn desired_subscriptions<'a>(
    subscriber: &str,
    published: impl IntoIterator<Item = &'a PlannedTrack>,
) -> Vec<String> {
    published
        .into_iter()
        .filter(|t| t.publisher != subscriber)
        .map(|t| t.track_id.clone())
        .collect()
}

/// Changes that bring the legs a subscriber connection has (`current`) to `desired`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubscriptionDiff {
    /// Tracks to add a sendonly leg for, in `desired` order.
    pub add: Vec<String>,
    /// Legs to remove, in `current` order.
    pub remove: Vec<String>,
}

impl SubscriptionDiff {
    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }
}

/// Computes the [`SubscriptionDiff`].
pub fn diff_subscriptions(desired: &[String], current: &[String]) -> SubscriptionDiff {
    let want: HashSet<&str> = desired.iter().map(String::as_str).collect();
    let have: HashSet<&str> = current.iter().map(String::as_str).collect();
    SubscriptionDiff {
        add: desired
            .iter()
            .filter(|t| !have.contains(t.as_str()))
            .cloned()
            .collect(),
        remove: current
            .iter()
            .filter(|t| !want.contains(t.as_str()))
            .cloned()
            .collect(),
    }
}

/// Subscriber-side offer/answer bookkeeping: at most one server offer outstanding; changes
/// made meanwhile are remembered and produce exactly one more offer after the answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OfferState {
    outstanding: bool,
    dirty: bool,
    ever_offered: bool,
}

/// What to do when the subscription may have changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OfferDecision {
    /// Apply the changes and send an offer now.
    OfferNow,
    /// An offer is outstanding: remember, offer again after the answer.
    Deferred,
}

impl OfferState {
    /// The subscription may have changed.
    pub fn on_change(&mut self) -> OfferDecision {
        if self.outstanding {
            self.dirty = true;
            OfferDecision::Deferred
        } else {
            OfferDecision::OfferNow
        }
    }

    /// Whether an offer is worth sending when the connection would carry `legs` legs and
    /// the diff changed something: never before the first remote track exists, and never
    /// for no change (after the first offer).
    pub fn should_send(&self, legs: usize, changed: bool) -> bool {
        if !self.ever_offered {
            legs > 0
        } else {
            changed
        }
    }

    /// An offer was sent.
    pub fn offer_sent(&mut self) {
        self.outstanding = true;
        self.dirty = false;
        self.ever_offered = true;
    }

    /// The answer arrived; returns whether another offer round is due.
    pub fn answer_received(&mut self) -> bool {
        self.outstanding = false;
        std::mem::take(&mut self.dirty)
    }

    /// Whether an offer is waiting for its answer.
    pub fn is_outstanding(&self) -> bool {
        self.outstanding
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: &str, p: &str) -> PlannedTrack {
        PlannedTrack {
            track_id: id.into(),
            publisher: p.into(),
        }
    }

    #[test]
    fn subscribes_to_everyone_but_itself() {
        let tracks = [t("a-v", "a"), t("a-a", "a"), t("b-v", "b")];
        assert_eq!(desired_subscriptions("a", &tracks), vec!["b-v"]);
        assert_eq!(
            desired_subscriptions("c", &tracks),
            vec!["a-v", "a-a", "b-v"]
        );
        assert!(desired_subscriptions("a", &[t("a-v", "a")]).is_empty());
    }

    #[test]
    fn diff_adds_and_removes() {
        let d = diff_subscriptions(
            &["x".into(), "y".into(), "z".into()],
            &["w".into(), "y".into()],
        );
        assert_eq!(d.add, vec!["x", "z"]);
        assert_eq!(d.remove, vec!["w"]);
        assert!(diff_subscriptions(&["x".into()], &["x".into()]).is_empty());
    }

    #[test]
    fn one_offer_outstanding_then_one_more() {
        let mut s = OfferState::default();
        assert!(
            !s.should_send(0, false),
            "no offer with nothing to subscribe"
        );
        assert_eq!(s.on_change(), OfferDecision::OfferNow);
        assert!(s.should_send(1, true));
        s.offer_sent();
        assert!(s.is_outstanding());
        assert_eq!(s.on_change(), OfferDecision::Deferred);
        assert_eq!(s.on_change(), OfferDecision::Deferred);
        assert!(
            s.answer_received(),
            "changes during the offer: one more round"
        );
        assert!(!s.is_outstanding());
        assert_eq!(s.on_change(), OfferDecision::OfferNow);
        s.offer_sent();
        assert!(!s.answer_received(), "nothing changed meanwhile");
        // After the first offer, going to zero legs still needs an offer (removals).
        assert!(s.should_send(0, true));
        assert!(!s.should_send(2, false));
    }
}
