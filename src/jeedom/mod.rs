//! Everything that talks to Jeedom: the command socket and the callback.
pub mod callback;
pub mod events;
pub mod files;
pub mod options;
pub mod request;
pub mod socket;
pub mod spool;
