//! The subscriber side of a room: every change of who receives what becomes one
//! subscriber offer per affected participant (one outstanding at a time), and the answers
//! complete the legs.

use tracing::{debug, warn};

use super::Room;
use crate::engine::ctx::Ctx;
use crate::engine::io::{ParticipantKey, TrackKey};
use crate::error::SfuError;
use crate::forward::LegMapping;
use crate::plan::OfferDecision;
use crate::types::{PcRole, SfuEvent};

impl Room {
    pub(super) fn renegotiate_all_but(&mut self, ctx: &mut Ctx<'_>, except: ParticipantKey) {
        let others: Vec<ParticipantKey> = self
            .participants
            .keys()
            .copied()
            .filter(|k| *k != except)
            .collect();
        for q in others {
            self.renegotiate(ctx, q);
        }
    }

    /// Brings `key`'s subscriber connection in line with the room's tracks and sends an
    /// offer if needed (or defers it while one is outstanding). Failures are logged: the
    /// next change tries again.
    pub(super) fn renegotiate(&mut self, ctx: &mut Ctx<'_>, key: ParticipantKey) {
        if let Err(err) = self.try_renegotiate(ctx, key) {
            warn!(room_id = %self.id, participant = key, %err, "subscriber renegotiation failed");
        }
    }

    fn try_renegotiate(&mut self, ctx: &mut Ctx<'_>, key: ParticipantKey) -> Result<(), SfuError> {
        let Room {
            participants,
            tracks,
            ..
        } = self;
        let Some(p) = participants.get_mut(&key) else {
            return Ok(());
        };
        if p.offer.on_change() == OfferDecision::Deferred {
            debug!(
                participant = key,
                "subscriber offer outstanding, change deferred"
            );
            return Ok(());
        }
        let desired: Vec<TrackKey> = tracks
            .iter()
            .filter(|(_, t)| t.publisher != key)
            .map(|(k, _)| *k)
            .collect();
        let remove: Vec<TrackKey> = p
            .legs
            .keys()
            .filter(|k| !tracks.contains_key(k))
            .copied()
            .collect();
        let add: Vec<TrackKey> = desired
            .iter()
            .filter(|k| !p.legs.contains_key(k))
            .copied()
            .collect();
        let changed = !add.is_empty() || !remove.is_empty() || p.ice_restart || p.unoffered;
        if !p.offer.should_send(desired.len(), changed) {
            p.ice_restart = false; // nothing was ever offered: nothing to restart
            return Ok(());
        }
        // Until the offer is out, the connection's legs differ from what the client knows.
        p.unoffered = true;
        for tk in remove {
            p.remove_leg(ctx, tk);
        }
        for tk in add {
            if let Some(t) = tracks.get_mut(&tk) {
                p.add_leg(ctx, tk, t)?;
            }
        }
        let sdp = p.subscriber.offer(ctx, p.ice_restart)?;
        p.ice_restart = false;
        p.unoffered = false;
        p.offer.offer_sent();
        ctx.out.event(key, SfuEvent::SubscriberOffer { sdp });
        p.subscriber.announce_candidates(ctx);
        debug!(
            participant = key,
            legs = p.legs.len(),
            "subscriber offer sent"
        );
        Ok(())
    }

    /// Applies the client's answer to the last subscriber offer; sends the next offer
    /// right away if the room changed meanwhile.
    pub(crate) fn subscriber_answer(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: ParticipantKey,
        sdp: String,
    ) -> Result<(), SfuError> {
        let Room {
            participants,
            tracks,
            ..
        } = self;
        let p = participants.get_mut(&key).ok_or(SfuError::Closed)?;
        if !p.offer.is_outstanding() {
            return Err(SfuError::InvalidState(
                "no subscriber offer is outstanding".into(),
            ));
        }
        if let Err(err) = p.subscriber.accept_answer(ctx, sdp) {
            p.offer.answer_received(); // forget the round; the next change starts a new one
            return Err(err);
        }
        for (tk, leg) in p.legs.iter_mut() {
            let (Some(t), Some(params)) = (tracks.get(tk), p.subscriber.sender_params(leg.sender))
            else {
                continue;
            };
            let mapping = LegMapping::new(leg.ssrc, &t.source, &params);
            if !mapping.is_usable() {
                warn!(track_id = %t.info.track_id, source = ?t.source.codecs, leg = ?params.codecs, "no common codec on subscriber leg");
            }
            leg.mapping = Some(mapping);
        }
        let again = p.offer.answer_received();
        self.allocation.soon(ctx, self.key);
        self.process(ctx, key, PcRole::Subscriber);
        if again {
            self.renegotiate(ctx, key);
        }
        Ok(())
    }

    /// Restarts ICE on `key`'s subscriber connection (now, or after the outstanding offer).
    pub(crate) fn restart_subscriber_ice(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: ParticipantKey,
    ) -> Result<(), SfuError> {
        self.participant(key)?.ice_restart = true;
        self.renegotiate(ctx, key);
        Ok(())
    }
}
