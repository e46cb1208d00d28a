//! The one owner of a video room's life.
//!
//! A room is a row of `instant_sessions` plus, while people are in it, a live room in
//! the signaling hub. Everything that changes a room goes through here:
//!
//! - [`open`]: instant sessions started by a therapist, the restricted rooms of booked
//!   1:1 sessions and of group sessions — one insert, one token generator, one expiry
//!   rule ([`ROOM_GRACE_MS`]), one audit action (`room.open`);
//! - [`admission`]: who may enter now, and the registration that follows — the same
//!   function for `POST /api/sessions/{id}/participants` and for the signaling `join`;
//!   guest identities minted from share links;
//! - [`removal`]: the therapist removes someone, and it sticks;
//! - [`end`]: the therapist ends the session;
//! - [`waiting`]: admit and decline decisions, and the waiting room switch;
//! - [`presence`]: people entering, leaving and waiting in the live room.
//!
//! Each change also queues its webhook event ([`crate::webhooks`]) in its transaction.
//!
//! Rules answer with a [`crate::denial::Denial`]; REST and signaling translate it.

pub mod admission;
pub mod end;
pub mod open;
pub mod presence;
pub mod removal;
pub mod waiting;

/// How long the room of a booked or group session stays open after the session's
/// scheduled end, so a session that runs over is not cut off.
pub const ROOM_GRACE_MS: i64 = 30 * 60_000;

/// The most people one room holds. Instant rooms stay at 2–50 (checked by the API); the
/// room of a group session holds its seats (at most 50), its accepted therapists (at
/// most 10) and its moderator.
pub const MAX_ROOM_PARTICIPANTS: i64 = 100;
