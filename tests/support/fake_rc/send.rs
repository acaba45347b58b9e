//! Messages sent by a logged-in user (REST `chat.sendMessage`, DDP `sendMessage`), with the real checks.
use super::world::World;
use serde_json::{json, Map, Value};

/// Fields a client may set on a message it sends.
const CLIENT_FIELDS: &[&str] = &[
    "_id",
    "rid",
    "msg",
    "tmid",
    "tshow",
    "attachments",
    "alias",
    "emoji",
    "avatar",
    "customFields",
    "blocks",
    "t",
];

/// Why a send was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// A message with this `_id` already exists.
    Duplicate(String),
    /// Refused with `(error text, errorType)`.
    Refused(String, String),
}

impl SendError {
    fn refused(error: &str, error_type: &str) -> SendError {
        SendError::Refused(error.into(), error_type.into())
    }

    /// REST failure body `{"success":false,"error":..,"errorType":..}`.
    pub fn rest_body(&self) -> Value {
        match self {
            SendError::Duplicate(id) => json!({
                "success": false,
                "error": format!("E11000 duplicate key error collection: rocketchat.rocketchat_message index: _id_ dup key: {{ _id: \"{id}\" }}"),
            }),
            SendError::Refused(e, t) if t.is_empty() => json!({"success": false, "error": e}),
            SendError::Refused(e, t) => json!({"success": false, "error": e, "errorType": t}),
        }
    }
}

impl World {
    /// Validates and stores a message sent by `uid`; returns the stored document (EJSON dates).
    pub fn user_send(&mut self, uid: &str, m: &Value) -> Result<Value, SendError> {
        let Some(obj) = m.as_object() else {
            let e = "The \"message\" parameter must be provided. [error-invalid-params]";
            return Err(SendError::refused(e, "error-invalid-params"));
        };
        let Some(rid) = obj.get("rid").and_then(Value::as_str) else {
            let e = "The 'rid' property on the message object is missing.";
            return Err(SendError::refused(e, "error-invalid-params"));
        };
        if obj.contains_key("ts") {
            let e = "Message timestamp is out of sync [error-message-ts-out-of-sync]";
            return Err(SendError::refused(e, "error-message-ts-out-of-sync"));
        }
        // Next in `executeSendMessage` (apps/meteor/app/lib/server/methods/sendMessage.ts).
        let max = self
            .settings
            .get("Message_MaxAllowedSize")
            .and_then(Value::as_u64);
        let max = max.unwrap_or(5000);
        let text = obj.get("msg").and_then(Value::as_str).unwrap_or_default();
        if text.encode_utf16().count() as u64 > max {
            let e = "Message size exceeds Message_MaxAllowedSize [error-message-size-exceeded]";
            return Err(SendError::refused(e, "error-message-size-exceeded"));
        }
        if self.room(rid).is_none() {
            return Err(SendError::refused(
                "error-invalid-room",
                "error-invalid-room",
            ));
        }
        if !self.can_access(rid, uid) {
            return Err(SendError::refused("error-not-allowed", "error-not-allowed"));
        }
        let username = self
            .user(uid)
            .map(|u| u.username.clone())
            .unwrap_or_default();
        if let Err(text) = self.edit_policy.can_send(rid, &username) {
            // A plain `Error` (`canSendMessage.ts`): no `errorType`.
            return Err(SendError::refused(text, ""));
        }
        if let Some(id) = obj.get("_id").and_then(Value::as_str) {
            if self.msg_index(id).is_some() {
                return Err(SendError::Duplicate(id.into()));
            }
        }
        let mut msg: Map<String, Value> = obj
            .iter()
            .filter(|(k, _)| CLIENT_FIELDS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        msg.insert("u".into(), json!({"_id": uid}));
        self.complete_message(&mut msg);
        let id = self.insert_message(msg);
        Ok(self.messages[self.msg_index(&id).expect("just stored")].clone())
    }
}
