//! (temporary stub: replaced by the sender branch)
use crate::config::ServerUrl;
use crate::error::Result;
use std::sync::Arc;

pub struct Rest;

impl Rest {
    pub fn new(_s: &ServerUrl, _t: Arc<rustls::ClientConfig>) -> Result<Rest> {
        Ok(Rest)
    }
}
