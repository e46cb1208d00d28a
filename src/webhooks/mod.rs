//! Webhooks: the practice's other systems (billing, EHR, calendars) learn what happens
//! in TheraRoom — sessions starting and ending, people joining, leaving, waiting and
//! being admitted, bookings made and cancelled — by signed HTTPS POSTs to one endpoint
//! per organization. docs/WEBHOOKS.md is the receivers' side of this.
//!
//! - [`events`]: the event types, their payloads (ids and times only) and [`emit`],
//!   which puts an event in the outbox inside the transaction of the change it reports;
//! - [`deliver`]: the worker `serve` starts, which sends due events and retries with
//!   backoff until delivered or the schedule is used up;
//! - [`client`]: the HTTPS client it sends with; [`sign`]: the signature header;
//! - [`target`]: which URLs and addresses may receive webhooks;
//! - [`settings`]: the flags and the worker's configuration.

pub mod client;
pub mod deliver;
pub mod emitters;
pub mod endpoint;
pub mod events;
pub mod settings;
pub mod sign;
pub mod target;

pub use deliver::Worker;
pub use events::{emit, EventType};
pub use settings::{DeliveryConfig, WebhookSettings};
pub use target::UrlPolicy;
