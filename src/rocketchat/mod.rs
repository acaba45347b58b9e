//! Everything that talks to Rocket.Chat: DDP realtime API and REST.
pub mod ask;
pub mod ddp;
pub mod message;
pub mod plan;
pub mod realtime;
pub mod rest;
pub mod rest_shapes;
mod rest_tls;
pub mod sender;
#[cfg(test)]
mod test_http;
