//! The bot's account as the last login gave it, kept for the next start.
use super::{Journal, Persisted};
use crate::journal::Op;
use crate::model::{Secret, Session};
use crate::state::State;

/// Who the bot is, and the token a restart resumes with.
#[derive(Debug, Default)]
pub struct Account {
    /// Persisted (`user_id`, `username`, `resume_token` of the state file).
    user_id: Option<String>,
    username: Option<String>,
    resume_token: Option<Secret>,
}

impl Persisted for Account {
    fn swap(&mut self, state: &mut State) {
        std::mem::swap(&mut self.user_id, &mut state.user_id);
        std::mem::swap(&mut self.username, &mut state.username);
        std::mem::swap(&mut self.resume_token, &mut state.resume_token);
    }
}

impl Account {
    /// A login: the next start resumes its session.
    pub fn logged_in(&mut self, s: &Session, j: &mut impl Journal) {
        self.user_id = Some(s.user_id.clone());
        self.username = Some(s.username.clone());
        self.resume_token = Some(s.token.clone());
        j.record(Op::Session {
            user_id: self.user_id.clone(),
            username: self.username.clone(),
            resume_token: self.resume_token.clone(),
        });
    }

    /// The bot's username (empty before the first login).
    pub fn bot(&self) -> &str {
        self.username.as_deref().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_is_kept_for_the_next_start() {
        let mut state = State {
            username: Some("old".into()),
            ..State::default()
        };
        let (mut a, mut j) = (Account::take(&mut state), Vec::new());
        assert_eq!((a.bot(), state.username.as_deref()), ("old", None));
        let s = crate::core::fixtures::session();
        a.logged_in(&s, &mut j);
        assert_eq!(a.bot(), "jeedombot");
        assert!(matches!(&j[..], [Op::Session { user_id: Some(id), .. }] if id == "botid"));
        a.swap(&mut state);
        assert_eq!(
            state.resume_token.map(|t| t.expose().to_string()),
            Some("t".into())
        );
    }
}
