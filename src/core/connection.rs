//! The connection to Rocket.Chat as the core sees it: the session, the last
//! errors of both sides, for `status` and systemd.
use crate::model::Session;
use serde_json::{json, Value};
use std::time::Instant;

/// The connection's state, reported by the realtime and callback threads.
pub struct Connection {
    /// Called with a one-line connection status (systemd `STATUS=`).
    on_status: Box<dyn Fn(&str) + Send>,
    session: Option<Session>,
    /// Why the realtime link is down (until it is up again).
    last_error: Option<String>,
    /// Why the last delivery to Jeedom failed (until one succeeds).
    callback_error: Option<String>,
    started: Instant,
}

impl Connection {
    pub fn new(on_status: Box<dyn Fn(&str) + Send>) -> Connection {
        Connection {
            on_status,
            session: None,
            last_error: None,
            callback_error: None,
            started: Instant::now(),
        }
    }

    /// Logged in: requests may go out.
    pub fn up(&mut self, s: Session) {
        log::info!(
            "connected to Rocket.Chat {} as {}",
            s.server_version,
            s.username
        );
        (self.on_status)(&format!(
            "connected as {} to Rocket.Chat {}",
            s.username, s.server_version
        ));
        self.session = Some(s);
        self.last_error = None;
    }

    /// The link went down, or a retry failed again. Returns whether that is
    /// news (Jeedom is told once per outage and distinct error).
    pub fn down(&mut self, error: String) -> bool {
        let was_up = self.session.take().is_some();
        let news = was_up || self.last_error.as_deref() != Some(error.as_str());
        if news {
            (self.on_status)(&format!("disconnected: {error}"));
        }
        self.last_error = Some(error);
        news
    }

    /// The server refused the session's token: no request goes out until
    /// the next login.
    pub fn refused(&mut self) {
        self.session = None;
    }

    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    pub fn callback_delivered(&mut self) {
        self.callback_error = None;
    }

    pub fn callback_failed(&mut self, error: String) {
        self.callback_error = Some(error);
    }

    /// The answer to the `status` action; `rooms` and `queues` come from
    /// the other parts.
    pub fn status(&self, rooms: usize, queues: Value) -> Value {
        let s = self.session.as_ref();
        json!({
            "ok": true,
            "connected": s.is_some(),
            "server_version": s.map(|s| s.server_version.as_str()),
            "user": s.map(|s| json!({"id": s.user_id, "username": s.username})),
            "rooms": rooms,
            "queues": queues,
            "last_error": self.last_error,
            "callback_error": self.callback_error,
            "uptime_s": self.started.elapsed().as_secs(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fixtures::session;
    use std::sync::{Arc, Mutex};

    fn connection() -> (Connection, Arc<Mutex<Vec<String>>>) {
        let said = Arc::new(Mutex::new(Vec::new()));
        let to = said.clone();
        let on_status = Box::new(move |s: &str| to.lock().unwrap().push(s.to_string()));
        (Connection::new(on_status), said)
    }

    #[test]
    fn an_outage_is_news_once_per_distinct_error() {
        let (mut l, said) = connection();
        assert!(l.down("refused".into()), "the first failure");
        assert!(!l.down("refused".into()), "the same retry failing");
        assert!(l.down("timed out".into()));
        l.up(session());
        assert!(l.down("timed out".into()), "was up");
        let said = said.lock().unwrap();
        assert_eq!(said.len(), 4);
        assert_eq!(said[2], "connected as jeedombot to Rocket.Chat 7");
    }

    #[test]
    fn the_status_shows_the_session_and_the_last_errors() {
        let (mut l, _) = connection();
        l.down("refused".into());
        l.callback_failed("HTTP 500".into());
        let st = l.status(3, json!({"events": 1}));
        assert_eq!(st["connected"], false);
        assert_eq!(st["last_error"], "refused");
        assert_eq!(st["callback_error"], "HTTP 500");
        assert_eq!(st["rooms"], 3);
        l.up(session());
        l.callback_delivered();
        let st = l.status(3, json!({}));
        assert_eq!(st["user"]["username"], "jeedombot");
        assert_eq!(
            (&st["last_error"], &st["callback_error"]),
            (&Value::Null, &Value::Null)
        );
        l.refused();
        assert!(l.session().is_none());
    }
}
