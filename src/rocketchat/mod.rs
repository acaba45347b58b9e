//! Everything that talks to Rocket.Chat: DDP realtime API and REST.
pub mod ask;
pub mod ddp;
pub mod message;
pub mod plan;
pub mod realtime;
pub mod rest;
pub mod rest_shapes;
pub mod sender;
#[cfg(test)]
pub(crate) mod test_http;
