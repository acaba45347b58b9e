//! Everything that talks to Rocket.Chat: DDP realtime API and REST.
pub(crate) mod ask;
pub(crate) mod ddp;
pub(crate) mod message;
pub(crate) mod plan;
pub(crate) mod realtime;
pub(crate) mod rest;
pub(crate) mod rest_shapes;
pub(crate) mod sender;
