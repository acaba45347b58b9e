//! The whole stack for a test: fake Rocket.Chat, fake Jeedom and the real daemon.
use super::{Daemon, APIKEY};
use crate::support::fake_jeedom::FakeJeedom;
use crate::support::fake_rc::{FakeRcOptions, FakeRocketChat};
use serde_json::Value;
use std::time::Duration;

/// Generous deadline for anything the daemon should do quickly.
pub const T: Duration = Duration::from_secs(20);

pub struct Stack {
    pub rc: FakeRocketChat,
    pub jeedom: FakeJeedom,
    pub daemon: Daemon,
}

impl Stack {
    /// Default server, password login, short heartbeat.
    pub fn start(name: &str) -> Stack {
        Stack::start_with(name, FakeRcOptions::default(), &[])
    }

    pub fn start_with(name: &str, opts: FakeRcOptions, extra: &[&str]) -> Stack {
        Stack::start_on(name, FakeRocketChat::start(opts), extra)
    }

    /// Starts Jeedom and the daemon against an already running (and prepared) server.
    pub fn start_on(name: &str, rc: FakeRocketChat, extra: &[&str]) -> Stack {
        Stack::start_env(name, rc, extra, &[])
    }

    /// Like [`Stack::start_on`], with extra environment variables for the daemon.
    pub fn start_env(
        name: &str,
        rc: FakeRocketChat,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Stack {
        let jeedom = FakeJeedom::start(APIKEY);
        let dir = super::temp_dir(name);
        let (url, cb) = (rc.url(), jeedom.url());
        let mut args = vec!["--url", url.as_str(), "--callback", cb.as_str()];
        if !extra.contains(&"--heartbeat") {
            args.extend_from_slice(&["--heartbeat", "2"]);
        }
        if !extra.iter().any(|a| *a == "--user" || *a == "--user-id") {
            args.extend_from_slice(&["--user", "jeedombot", "--password", "s3cret"]);
        }
        args.extend_from_slice(extra);
        let daemon = Daemon::start_env(&dir, &args, env);
        Stack { rc, jeedom, daemon }
    }

    /// Waits until the bot is logged in, subscribed, and Jeedom got the rooms.
    pub fn wait_connected(&self) {
        self.rc.wait_bot_listening(T);
        self.jeedom.wait_event(T, "rooms", |_| true);
        self.jeedom
            .wait_event(T, "status", |e| e["connected"] == true);
    }

    /// `message` events received so far, in order.
    pub fn messages(&self) -> Vec<Value> {
        self.jeedom.events_of_type("message")
    }

    /// Waits until Jeedom has `n` message events; returns them.
    pub fn wait_messages(&self, n: usize) -> Vec<Value> {
        let what = format!("{n} message events");
        self.jeedom.wait_events(T, &what, |ev| {
            ev.iter().filter(|e| e["type"] == "message").count() >= n
        });
        self.messages()
    }

    /// A `send` request that must be accepted.
    pub fn send(&self, req: Value) {
        let mut req = req;
        req["action"] = Value::from("send");
        let reply = self.request(req);
        assert_eq!(reply["ok"], true, "{reply}");
    }

    /// Waits for the `sent` event of request `reference`.
    pub fn sent(&self, reference: &str) -> Value {
        self.jeedom.wait_event(T, "sent", |e| e["ref"] == reference)
    }

    pub fn request(&self, v: Value) -> Value {
        let mut v = v;
        v["apikey"] = Value::from(APIKEY);
        self.daemon.request(&v)
    }
}
