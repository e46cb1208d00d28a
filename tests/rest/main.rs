//! The REST suite: every route's success and failure paths, cross-tenant isolation,
//! and the domain rules (video access, blog permission, sessions and share links), each test run on SQLite and on PostgreSQL.
//!
//! Run: `cargo test -p theraroom --test rest` (PostgreSQL at 127.0.0.1:5432, database
//! `test`; without it the PostgreSQL variants print SKIP, or fail when `CI=true`).

#[path = "../common/mod.rs"]
#[macro_use]
mod common;

mod accounts;
mod audit;
mod auth_health;
mod blog;
mod cross_tenant;
mod free_slots;
mod group_edits;
mod group_room_migration;
mod group_team;
mod groups;
mod groups_invitations;
mod groups_joins;
mod groups_notifications;
mod groups_proposals;
mod groups_rooms;
mod http_limits;
mod join;
mod participants;
mod people;
mod props;
mod records_audit;
mod records_notes;
mod rescheduling;
mod rooms;
mod scheduling;
mod scheduling_holds;
mod scheduling_races;
mod scheduling_series;
mod scheduling_sessions;
mod scheduling_video;
mod series_and_expiry;
mod sessions;
mod tokens;
mod video_access;
mod waiting;
mod webhook_delivery;
#[path = "../webhook_receiver/mod.rs"]
mod webhook_receiver;
mod webhooks;
mod working_hours;

pub use common::{OrgFx, Person, TestApp};
pub use serde_json::{json, Value};
pub use theraroom::auth::Role;
