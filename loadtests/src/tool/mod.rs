//! The load tool's parts (the binary's modules; the protocol client is the library).

pub mod backend;
pub mod cluster;
pub mod janus;
pub mod procfs;
pub mod relay;
pub mod report;
pub mod scenario;
pub mod server;
pub mod shape;
