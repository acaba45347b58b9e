//! The open questions: answered by a reply in their room, or expired; then
//! closed by an edit of the question.
use super::{Journal, Persisted};
use crate::bridge::answers::{closed_text, match_answer, Closed};
use crate::bridge::events::{self, Event};
use crate::bridge::mention::query;
use crate::bus::RtCommand;
use crate::journal::Op;
use crate::model::{Incoming, Room};
use crate::state::{PendingAsk, State};

/// The questions posted and not yet closed by an accepted edit.
#[derive(Debug, Default)]
pub struct Asks {
    /// Persisted (`asks` of the state file; a short list: journaled whole).
    asks: Vec<PendingAsk>,
}

impl Persisted for Asks {
    fn swap(&mut self, state: &mut State) {
        std::mem::swap(&mut self.asks, &mut state.asks);
    }
}

impl Asks {
    pub fn len(&self) -> usize {
        self.asks.len()
    }

    /// A question was posted: it waits for its answer.
    pub fn add(&mut self, ask: PendingAsk, j: &mut impl Journal) {
        self.asks.push(ask);
        self.record(j);
    }

    fn record(&self, j: &mut impl Journal) {
        j.record(Op::Asks {
            asks: self.asks.clone(),
        });
    }

    /// A reply to the newest open question of the room becomes its
    /// `ask_answer`, and the question's closing edit. A leading mention of
    /// the bot does not count (`@jeedombot yes`).
    pub fn answer(
        &mut self,
        m: &Incoming,
        room: &Room,
        bot: &str,
        j: &mut impl Journal,
    ) -> Option<(Event, RtCommand)> {
        let reply = query(&m.text, bot);
        let who = &m.user.username;
        let ask = self.asks.iter_mut().rev().find(|a| {
            a.closing.is_none()
                && a.room.id == room.id
                && a.mention
                    .as_deref()
                    .is_none_or(|u| u.eq_ignore_ascii_case(who))
        })?;
        let answer = match_answer(&ask.answers, &reply)?;
        log::info!("ask {} answered \"{answer}\" by {who}", ask.ask_id);
        let by = Closed::Answered {
            answer: &answer,
            by: who,
        };
        ask.closing = Some(closed_text(&ask.question, by));
        let ev = events::ask_answer(&m.id, &ask.ask_id, &answer, &m.user, room);
        let edit = closing_edit(ask);
        self.record(j);
        edit.map(|edit| (ev, edit))
    }

    /// Closes the questions whose time is up (`now`: ms since the epoch);
    /// returns each one's id and closing edit.
    pub fn expire(&mut self, now: i64, j: &mut impl Journal) -> Vec<(String, RtCommand)> {
        let mut expired = Vec::new();
        let due = |a: &&mut PendingAsk| a.closing.is_none() && a.expires_ms <= now;
        for a in self.asks.iter_mut().filter(due) {
            a.closing = Some(closed_text(&a.question, Closed::Expired));
            expired.extend(closing_edit(a).map(|edit| (a.ask_id.clone(), edit)));
        }
        if !expired.is_empty() {
            self.record(j);
        }
        expired
    }

    /// When the next open question expires (ms since the epoch).
    pub fn next_expiry(&self) -> Option<i64> {
        let open = self.asks.iter().filter(|a| a.closing.is_none());
        open.map(|a| a.expires_ms).min()
    }

    /// The server answered the closing edit of `message_id`: the question
    /// is done with, whatever the answer.
    pub fn edited(&mut self, message_id: &str, j: &mut impl Journal) -> Option<PendingAsk> {
        let closed = |a: &PendingAsk| a.message_id == message_id && a.closing.is_some();
        let pos = self.asks.iter().position(closed)?;
        let ask = self.asks.remove(pos);
        self.record(j);
        Some(ask)
    }

    /// The edits still to apply (sent again after each new session).
    pub fn closing_edits(&self) -> Vec<RtCommand> {
        self.asks.iter().filter_map(closing_edit).collect()
    }
}

/// The edit that closes a question (once it is answered or expired).
fn closing_edit(a: &PendingAsk) -> Option<RtCommand> {
    Some(RtCommand::UpdateMessage {
        message_id: a.message_id.clone(),
        room_id: a.room.id.clone(),
        text: a.closing.clone()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fixtures::{incoming, pending, room};

    fn ask(id: &str, mention: Option<&str>, expires_ms: i64) -> PendingAsk {
        pending(id, mention, expires_ms)
    }

    fn reply(user: &str, text: &str) -> Incoming {
        incoming("GENERAL", &format!("{user}-{text}"), user, text, 1)
    }

    fn edited_id(edit: &RtCommand) -> &str {
        match edit {
            RtCommand::UpdateMessage { message_id, .. } => message_id,
            RtCommand::Relogin => "",
        }
    }

    #[test]
    fn a_reply_closes_the_newest_question_its_author_may_answer() {
        let mut j = Vec::new();
        let mut asks = Asks::default();
        asks.add(ask("1", None, i64::MAX), &mut j);
        asks.add(ask("2", Some("alice"), i64::MAX), &mut j);
        let (ev, edit) = asks
            .answer(&reply("bob", "@bot no"), &room("GENERAL"), "bot", &mut j)
            .expect("bob answers ask 1");
        let ev = ev.to_value();
        assert_eq!((&ev["ask_id"], &ev["answer"]), (&"1".into(), &"No".into()));
        assert_eq!(edited_id(&edit), "q1");
        assert!(asks
            .answer(&reply("bob", "yes"), &room("GENERAL"), "bot", &mut j)
            .is_none());
        assert!(asks
            .answer(&reply("alice", "maybe"), &room("GENERAL"), "bot", &mut j)
            .is_none());
        assert_eq!(j.len(), 3, "two adds and one answer, journaled whole");
        assert_eq!(asks.closing_edits().len(), 1);
    }

    #[test]
    fn a_question_expires_once_and_its_edit_is_kept_until_done() {
        let mut j = Vec::new();
        let mut asks = Asks::default();
        asks.add(ask("1", None, 100), &mut j);
        asks.add(ask("2", None, 200), &mut j);
        assert_eq!(asks.next_expiry(), Some(100));
        assert!(asks.expire(99, &mut j).is_empty());
        let expired = asks.expire(150, &mut j);
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].0, "1");
        assert!(asks.expire(150, &mut j).is_empty(), "once");
        assert_eq!(asks.next_expiry(), Some(200));
        assert_eq!(j.len(), 3);
        assert!(asks.edited("q2", &mut j).is_none(), "still open");
        let done = asks.edited("q1", &mut j).expect("closed");
        assert!(done.closing.unwrap().contains("Call?"));
        assert_eq!(asks.len(), 1);
        assert!(asks.closing_edits().is_empty());
    }
}
