//! Public settings and `settings.public`, as the real server answers them by version.
//!
//! Modelled on `apps/meteor/app/api/server/v1/settings.ts` (the route),
//! `apps/meteor/app/api/server/helpers/getPaginationItems.ts` (`count`:
//! `API_Default_Count` 50 when absent, cut to `API_Upper_Count_Limit` 100)
//! and `packages/rest-typings/src/v1/settings.ts` (the parameters a 7.x
//! server accepts, `additionalProperties: false`: any other is a 400).
//! Since 7.0 (PR #33787) `_id` filters (a comma list) and `query` is
//! ignored (without ALLOW_UNSAFE_QUERY_AND_FIELDS_API_PARAMS); before, `_id`
//! was ignored. `query` is not modelled at all: the fake is stricter there.
use super::rest::{failure, send, Answer};
use super::util::parse_version;
use super::Shared;
use crate::support::http::Request;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The parameters of `isSettingsPublicWithPaginationProps`.
const KNOWN: [&str; 5] = ["count", "offset", "sort", "_id", "query"];

/// Public settings of a default server, a real sample (a 7.x server has a
/// few hundred): more than a default page sort before `Message_MaxAllowedSize`.
const PUBLIC: &[&str] = &[
    "API_Embed",
    "API_EmbedDisabledFor",
    "API_Enable_Rate_Limiter",
    "Accounts_AllowAnonymousRead",
    "Accounts_AllowAnonymousWrite",
    "Accounts_AllowDeleteOwnAccount",
    "Accounts_AllowEmailChange",
    "Accounts_AllowEmailNotifications",
    "Accounts_AllowPasswordChange",
    "Accounts_AllowPasswordChangeForOAuthUsers",
    "Accounts_AllowRealNameChange",
    "Accounts_AllowUserAvatarChange",
    "Accounts_AllowUserProfileChange",
    "Accounts_AllowUserStatusMessageChange",
    "Accounts_AllowUsernameChange",
    "Accounts_AvatarBlockUnauthenticatedAccess",
    "Accounts_AvatarExternalProviderUrl",
    "Accounts_CustomFields",
    "Accounts_CustomFieldsToShowInUserInfo",
    "Accounts_EmailOrUsernamePlaceholder",
    "Accounts_EmailVerification",
    "Accounts_Iframe_api_method",
    "Accounts_Iframe_api_url",
    "Accounts_LoginExpiration",
    "Accounts_ManuallyApproveNewUsers",
    "Accounts_PasswordPlaceholder",
    "Accounts_PasswordReset",
    "Accounts_RegistrationForm",
    "Accounts_RegistrationForm_LinkReplacementText",
    "Accounts_RequireNameForSignUp",
    "Accounts_RequirePasswordConfirmation",
    "Accounts_SearchFields",
    "Accounts_ShowFormLogin",
    "Accounts_TwoFactorAuthentication_Enabled",
    "Accounts_iframe_enabled",
    "Accounts_iframe_url",
    "Allow_Marketing_Emails",
    "Assets_favicon",
    "Assets_logo",
    "CAS_enabled",
    "CAS_login_url",
    "Custom_Translations",
    "DirectMesssage_maxUsers",
    "Discussion_enabled",
    "E2E_Enable",
    "E2E_Enabled_Default_DirectRooms",
    "Favorite_Rooms",
    "FileUpload_Enabled",
    "FileUpload_Enabled_Direct",
    "FileUpload_MaxFileSize",
    "FileUpload_MediaTypeBlackList",
    "FileUpload_MediaTypeWhiteList",
    "FileUpload_ProtectFiles",
    "Force_SSL",
    "GoogleAnalytics_enabled",
    "Hide_System_Messages",
    "Jitsi_Enabled",
    "LDAP_Enable",
    "Language",
    "Layout_Home_Body",
    "Layout_Home_Title",
    "Layout_Login_Terms",
    "Layout_Privacy_Policy",
    "Layout_Sidenav_Footer",
    "Layout_Terms_of_Service",
    "Livechat_enabled",
    "Message_AllowDeleting",
    "Message_AllowEditing",
    "Message_AllowEditing_BlockEditInMinutes",
    "Message_AllowPinning",
    "Message_AllowStarring",
    "Message_AudioRecorderEnabled",
    "Message_BadWordsFilterList",
    "Message_DateFormat",
    "Message_GroupingPeriod",
    "Message_KeepHistory",
    "Message_MaxAllowedSize",
    "Message_ShowDeletedStatus",
    "Message_TimeFormat",
    "Site_Name",
    "Site_Url",
    "Threads_enabled",
    "UI_Use_Real_Name",
];

/// The public settings of a default server, by `_id` (sorted as MongoDB
/// sorts them: byte order). Values other than the size are placeholders.
pub fn defaults() -> BTreeMap<String, Value> {
    let mut all: BTreeMap<String, Value> = PUBLIC
        .iter()
        .map(|id| (id.to_string(), json!(true)))
        .collect();
    all.insert("Message_MaxAllowedSize".into(), json!(5000));
    all
}

/// `GET settings.public`.
pub fn public(shared: &Shared, req: &Request) -> Answer {
    let v7 = parse_version(&shared.opts.version) >= (7, 0, 0);
    if v7 {
        if let Some(bad) = req.query.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            let e = format!("must NOT have additional properties '{bad}'");
            return failure(&e, "invalid-params");
        }
    }
    let number = |name: &str| req.query.get(name).map(|v| v.parse::<usize>().unwrap_or(0));
    let offset = number("offset").unwrap_or(0);
    let count = match number("count") {
        None | Some(0) => 50,
        Some(n) => n.min(100),
    };
    let ids: Option<Vec<&str>> = match req.query.get("_id") {
        Some(list) if v7 && !list.is_empty() => Some(list.split(',').map(str::trim).collect()),
        _ => None,
    };
    let w = shared.world();
    let matching: Vec<Value> = w
        .settings
        .iter()
        .filter(|(id, _)| ids.as_ref().is_none_or(|ids| ids.contains(&id.as_str())))
        .map(|(id, value)| json!({"_id": id, "value": value}))
        .collect();
    let total = matching.len();
    let page: Vec<Value> = matching.into_iter().skip(offset).take(count).collect();
    send(
        200,
        json!({"settings": page, "count": page.len(), "offset": offset, "total": total, "success": true}),
    )
}
