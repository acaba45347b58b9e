//! Everything that talks to Jeedom: the command socket and the callback.
pub mod callback;
pub mod options;
pub mod request;
