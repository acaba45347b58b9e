//! Who may edit or post where: `Message_AllowEditing*`, the `bot` role, read-only rooms, muted users.
//!
//! Modelled on `apps/meteor/app/lib/server/methods/updateMessage.ts` (the
//! checks of an edit, in this order) and
//! `apps/meteor/app/authorization/server/functions/canSendMessage.ts` (the
//! room checks of both a post and an edit).
use super::util::{date_ms, ejson_date, meteor_error, wall_ms};
use super::world::{World, BOT_ID};
use super::FakeRocketChat;
use serde_json::Value;
use std::collections::HashSet;

/// The settings and room flags the checks read; the defaults are the real server's.
#[derive(Debug, Clone)]
pub struct Policy {
    /// `Message_AllowEditing` (default true). Without it only `edit-message`
    /// holders (admins, owners, moderators; not the bot) may edit.
    pub allow_editing: bool,
    /// `Message_AllowEditing_BlockEditInMinutes` (default 0: no limit).
    pub block_edit_minutes: u64,
    /// Users holding `bypass-time-limit-edit-and-delete`: the `bot` and
    /// `app` roles have it (`apps/meteor/app/authorization/server/constant/permissions.ts`),
    /// so the bot does by default.
    pub bypass_time_limit: HashSet<String>,
    /// Rooms with `ro: true` (nobody without `post-readonly` may post).
    pub read_only: HashSet<String>,
    /// `(room id, username)` pairs in the room's `muted` list.
    pub muted: HashSet<(String, String)>,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            allow_editing: true,
            block_edit_minutes: 0,
            bypass_time_limit: HashSet::from([BOT_ID.to_string()]),
            read_only: HashSet::new(),
            muted: HashSet::new(),
        }
    }
}

impl Policy {
    /// `canSendMessage`'s room checks. They throw plain `Error`s, whose text
    /// REST answers as `{"success":false,"error":text}`.
    pub fn can_send(&self, rid: &str, username: &str) -> Result<(), &'static str> {
        if self.read_only.contains(rid) {
            return Err("You can't send messages because the room is readonly.");
        }
        if self
            .muted
            .contains(&(rid.to_string(), username.to_string()))
        {
            return Err("You_have_been_muted");
        }
        Ok(())
    }
}

impl World {
    /// Why `updateMessage` refuses `uid`'s edit of its own message `orig`, if
    /// it does: editing off, the time limit, then the room checks. Over DDP
    /// the latter's plain `Error` reaches the client sanitized by Meteor
    /// (`wrapInternalException` in meteor's `packages/ddp-server/livedata_server.js`),
    /// as `500 Internal server error`.
    pub fn edit_refusal(&self, uid: &str, orig: &Value) -> Option<Value> {
        let p = &self.edit_policy;
        if !p.allow_editing {
            let mut e = meteor_error("error-action-not-allowed", "Message editing not allowed");
            e["details"] =
                serde_json::json!({"method": "updateMessage", "action": "Message_editing"});
            return Some(e);
        }
        let age_min = date_ms(&orig["ts"]).map_or(0, |ts| wall_ms().saturating_sub(ts) / 60_000);
        let limited = p.block_edit_minutes != 0 && !p.bypass_time_limit.contains(uid);
        if limited && age_min >= p.block_edit_minutes {
            let mut e = meteor_error(
                "error-message-editing-blocked",
                "Message editing is blocked",
            );
            e["details"] = serde_json::json!({"method": "updateMessage"});
            return Some(e);
        }
        let rid = orig["rid"].as_str().unwrap_or_default();
        let username = self
            .user(uid)
            .map(|u| u.username.clone())
            .unwrap_or_default();
        p.can_send(rid, &username)
            .err()
            .map(|_| meteor_error(500, "Internal server error"))
    }
}

impl FakeRocketChat {
    /// Sets `Message_AllowEditing`.
    pub fn set_allow_editing(&self, on: bool) {
        self.shared.world().edit_policy.allow_editing = on;
    }

    /// Sets `Message_AllowEditing_BlockEditInMinutes` and whether the bot has
    /// the `bot` role (which lifts that limit).
    pub fn set_edit_limit(&self, minutes: u64, bot_role: bool) {
        let mut w = self.shared.world();
        w.edit_policy.block_edit_minutes = minutes;
        if bot_role {
            w.edit_policy.bypass_time_limit.insert(BOT_ID.into());
        } else {
            w.edit_policy.bypass_time_limit.remove(BOT_ID);
        }
    }

    /// Makes a room read-only (or not).
    pub fn set_read_only(&self, rid: &str, on: bool) {
        let mut w = self.shared.world();
        match on {
            true => w.edit_policy.read_only.insert(rid.into()),
            false => w.edit_policy.read_only.remove(rid),
        };
    }

    /// Mutes a user in a room.
    pub fn mute(&self, rid: &str, username: &str) {
        let pair = (rid.to_string(), username.to_string());
        self.shared.world().edit_policy.muted.insert(pair);
    }

    /// Dates message `id` `minutes` earlier, as if posted that long ago.
    pub fn age_message(&self, id: &str, minutes: u64) {
        let mut w = self.shared.world();
        let i = w.msg_index(id).expect("a stored message");
        let ts = date_ms(&w.messages[i]["ts"]).expect("a message time");
        w.messages[i]["ts"] = ejson_date(ts.saturating_sub(minutes * 60_000));
    }
}
