//! The server's `Message_MaxAllowedSize`, read from `settings.public` as every version answers it.
use super::{authed, finish, shapes, Rest, DEFAULT_MAX_MESSAGE_SIZE};
use crate::error::{Error, Result};
use crate::model::Session;
use serde_json::Value;

/// Settings asked a page when the server does not filter: the default of
/// `API_Upper_Count_Limit`, to which a larger `count` is cut
/// (apps/meteor/app/api/server/helpers/getPaginationItems.ts).
const PAGE: usize = 100;
/// Pages read at most (a server has a few hundred public settings).
const MAX_PAGES: usize = 10;

impl Rest {
    /// The server's `Message_MaxAllowedSize`, or the default 5000 when it
    /// cannot be read. Cached once the server answered.
    pub fn max_message_size(&self, s: &Session) -> usize {
        if let Some(n) = self.cache().max_message_size {
            return n;
        }
        let n = match self.read_max_message_size(s) {
            Ok(n) => n.unwrap_or(DEFAULT_MAX_MESSAGE_SIZE),
            Err(Error::Status { status, .. }) if status != 401 => DEFAULT_MAX_MESSAGE_SIZE,
            // Unreachable, rate-limited or logged out for now: ask again next time.
            Err(_) => return DEFAULT_MAX_MESSAGE_SIZE,
        };
        self.cache().max_message_size = Some(n);
        n
    }

    /// `settings.public` (apps/meteor/app/api/server/v1/settings.ts) filters
    /// on `_id` since 7.0 (PR #33787). Older servers ignore `_id` and answer
    /// the first page (`API_Default_Count`, 50) of all public settings sorted
    /// by `_id`, which ends before `Message_*`: the pages are then read in
    /// turn. (`query={"_id":..}` filtered before 7.0 but is ignored since,
    /// without ALLOW_UNSAFE_QUERY_AND_FIELDS_API_PARAMS: the pages work on all.)
    fn read_max_message_size(&self, s: &Session) -> Result<Option<usize>> {
        match self.settings_public(s, "_id=Message_MaxAllowedSize") {
            Ok(answer) => {
                if let Some(n) = shapes::max_message_size(&answer) {
                    return Ok(Some(n));
                }
            }
            // A server validating its parameters without knowing `_id`.
            Err(Error::Status { status: 400, .. }) => {}
            Err(e) => return Err(e),
        }
        let mut offset = 0;
        for _ in 0..MAX_PAGES {
            let page = self.settings_public(s, &format!("count={PAGE}&offset={offset}"))?;
            if let Some(n) = shapes::max_message_size(&page) {
                return Ok(Some(n));
            }
            let (got, total) = shapes::settings_page(&page);
            offset += got;
            if got == 0 || total.is_some_and(|t| offset >= t) {
                break;
            }
        }
        Ok(None)
    }

    fn settings_public(&self, s: &Session, params: &str) -> Result<Value> {
        let url = self.url(&format!("/api/v1/settings.public?{params}"));
        finish("settings.public", authed(self.agent.get(url), s).call())
    }
}
