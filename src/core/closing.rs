//! A question whose closing edit the server refused: a notice in the room instead, and Jeedom told.
//!
//! The server refuses to edit the bot's question under an edit time limit
//! (a bot without the `bot` role), with editing turned off, in a read-only
//! room or when the bot is muted. Its buttons then stay: the question would
//! look open although it was answered or expired. The daemon posts a new
//! message saying it is closed (a queued request of its own, so it survives
//! restarts and retries like any other), then sends `ask_close_failed`.
use super::Core;
use crate::bridge::answers::closing_notice;
use crate::bridge::clock::now_ms;
use crate::bridge::events::{self, Event};
use crate::model::{OutKind, Outgoing, Room};
use crate::state::PendingAsk;

impl Core {
    /// The outcome of the closing edit of a question.
    pub(super) fn on_updated(&mut self, message_id: &str, error: Option<String>) {
        let Some(ask) = self.asks.edited(message_id, &mut self.saver) else {
            return;
        };
        let Some(error) = error else {
            return;
        };
        log::warn!(
            "could not close the question of ask {} ({message_id}): {error}; \
             posting a message saying it is closed",
            ask.ask_id
        );
        self.outbox
            .keep(notice_request(&ask, &error), &mut self.saver);
    }
}

/// The request that posts the notice of `ask`, in its room. Its
/// key derives from the question's id, so its message id is stable.
fn notice_request(ask: &PendingAsk, edit_error: &str) -> Outgoing {
    let closing = ask.closing.as_deref().unwrap_or_default();
    Outgoing {
        key: format!("close-{}", ask.message_id),
        kind: OutKind::Notice {
            ask_id: ask.ask_id.clone(),
            edit_error: edit_error.to_string(),
        },
        room: ask.room.id.clone(),
        text: closing_notice(&ask.question, closing),
        mention: None,
        files: vec![],
        description: None,
        thread: None,
        reference: None,
        accepted_ms: now_ms(),
        steps_done: 0,
    }
}

/// The `ask_close_failed` event once the notice was posted, or failed too.
pub(super) fn notice_outcome(
    ask_id: &str,
    edit_error: &str,
    result: &Result<(Room, String), String>,
) -> Event {
    match result {
        Ok((room, id)) => {
            log::info!("notice for ask {ask_id} posted in {} as {id}", room.name);
            events::ask_close_failed(ask_id, edit_error, Ok(id))
        }
        Err(e) => {
            log::error!("ask {ask_id}: its question looks open: the notice failed too: {e}");
            events::ask_close_failed(ask_id, edit_error, Err(e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn ask() -> PendingAsk {
        PendingAsk {
            ask_id: "42".into(),
            message_id: "Q1".into(),
            question: "Call the police?".into(),
            closing: Some("Call the police?\n⌛ No answer in time".into()),
            ..crate::core::fixtures::pending("42", None, 0)
        }
    }

    #[test]
    fn the_notice_goes_to_the_questions_room_with_a_stable_key() {
        let item = notice_request(&ask(), "Message editing is blocked");
        assert_eq!(item.key, "close-Q1");
        assert_eq!(item.room, "GENERAL");
        assert!(item.text.contains("Call the police?"), "{}", item.text);
        assert!(item.text.contains("⌛ No answer in time"), "{}", item.text);
        let kind = OutKind::Notice {
            ask_id: "42".into(),
            edit_error: "Message editing is blocked".into(),
        };
        assert_eq!(item.kind, kind);
    }

    #[test]
    fn a_queued_notice_survives_the_state_file() {
        let item = notice_request(&ask(), "Message editing is blocked");
        let text = serde_json::to_string(&item).unwrap();
        assert!(text.contains(r#""kind":"notice""#), "{text}");
        let back: Outgoing = serde_json::from_str(&text).unwrap();
        assert_eq!(back, item);
    }

    #[test]
    fn the_event_says_whether_the_notice_was_posted() {
        let room = ask().room;
        let ev = notice_outcome("42", "blocked", &Ok((room, "N1".into()))).to_value();
        assert_eq!(
            ev,
            serde_json::json!({"type": "ask_close_failed", "ask_id": "42",
                               "error": "blocked", "notice_id": "N1"})
        );
        let ev = notice_outcome("42", "blocked", &Err("read-only".into())).to_value();
        assert_eq!(ev["notice_id"], Value::Null);
        assert_eq!(ev["notice_error"], "read-only");
    }
}
