//! (temporary stub: replaced by the callback branch)
use crate::bus::{CallbackJob, CoreMsg};
use crate::model::Secret;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

pub struct CallbackConfig {
    pub url: String,
    pub apikey: Secret,
    pub tls: Arc<rustls::ClientConfig>,
}

pub fn spawn(
    _c: CallbackConfig,
    _j: Receiver<CallbackJob>,
    _t: Sender<CoreMsg>,
    _s: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().spawn(|| {})
}
