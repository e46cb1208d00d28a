//! TheraRoom server: configuration, authentication, storage, REST, and the wiring
//! of the signaling hub and SFU into one HTTP application.
//!
//! Follow a request: [`app::build`] routes it; REST handlers in [`api`] check the
//! caller ([`auth`]) and the rules ([`policy`], [`access`], rooms in [`rooms`]) and read or write the
//! [`store`].

pub mod access;
pub mod accounts;
pub mod api;
pub mod app;
pub mod auth;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod data_keys;
pub mod demo;
pub mod denial;
pub mod error;
pub mod headers;
pub mod metrics;
pub mod policy;
pub mod random;
pub mod rooms;
pub mod rtc;
pub mod schedule;
pub mod state;
pub mod store;
pub mod tls;
pub mod turn;
pub mod webhooks;
