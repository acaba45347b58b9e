//! Everything that talks to Jeedom: the command socket and the callback.
pub(crate) mod callback;
pub(crate) mod files;
pub(crate) mod options;
pub(crate) mod request;
pub(crate) mod socket;
pub(crate) mod spool;
pub(crate) mod workers;
