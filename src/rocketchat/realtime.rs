//! (temporary stub: replaced by the realtime branch)
use crate::bus::{CoreMsg, RtCommand};
use crate::config::{Credentials, ServerUrl};
use crate::model::Secret;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub struct RealtimeConfig {
    pub server: ServerUrl,
    pub credentials: Credentials,
    pub tls: Arc<rustls::ClientConfig>,
    pub heartbeat: Duration,
    pub resume: Option<(String, Secret)>,
    pub alive: Arc<dyn Fn() + Send + Sync>,
}

pub fn spawn(
    _c: RealtimeConfig,
    _t: Sender<CoreMsg>,
    _r: Receiver<RtCommand>,
    _s: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().spawn(|| {})
}

pub fn probe(
    _c: &RealtimeConfig,
    _t: Duration,
) -> crate::error::Result<(crate::model::Session, Vec<crate::model::Room>)> {
    Err(crate::error::Error::Protocol("not yet".into()))
}
