//! Send worker tests of a retried `_id`: the answers servers give to a second copy.
use super::*;

#[test]
fn duplicate_id_answers_mean_already_posted() {
    for reply in [
        ok(json!({"success": true})),
        (
            400,
            vec![],
            json!({"success": false, "error": "Message already exists [error-message-already-exists]"})
                .to_string(),
        ),
    ] {
        let server = Responder::start(move |_| reply.clone());
        let got = run(&server, "7.4.1", item("k2", "GENERAL", "again"));
        match final_outcome(&got) {
            SendOutcome::Sent { message_id, .. } => {
                assert_eq!(message_id, &plan::message_id("k2", 0))
            }
            other => panic!("{other:?}"),
        }
    }
}

/// Current servers crash on a second `_id` (400 `reading 'starred'`): the
/// worker looks the message up, counts it as posted and goes on with the
/// next part; a message that is not there keeps the 400.
#[test]
fn a_400_on_a_posted_id_is_checked_and_the_request_goes_on() {
    let crash = json!({"success": false, "error": "Cannot read properties of undefined (reading 'starred')"});
    for (stored, want_sent) in [(true, true), (false, false)] {
        let first = plan::message_id("kd", 0);
        let crash = crash.clone();
        let server = Responder::start(move |r| match r.path.as_str() {
            "/api/v1/chat.sendMessage" if r.json()["message"]["_id"] == first.as_str() => {
                (400, vec![], crash.to_string())
            }
            "/api/v1/chat.sendMessage" => echo_message(r),
            p if p.starts_with("/api/v1/chat.getMessage?msgId=") && stored => {
                let m = json!({"_id": first, "rid": "GENERAL", "u": {"_id": "U1"}});
                ok(json!({"message": m, "success": true}))
            }
            _ => (400, vec![], json!({"success": false}).to_string()),
        });
        let text = format!("{}\n{}", "a".repeat(4000), "b".repeat(4000));
        let got = run(&server, "7.4.1", item("kd", "#general", &text));
        let paths = server.paths();
        let looked_up = format!(
            "/api/v1/chat.getMessage?msgId={}",
            plan::message_id("kd", 0)
        );
        assert!(paths.contains(&looked_up), "{paths:?}");
        match final_outcome(&got) {
            SendOutcome::Sent { message_id, .. } if want_sent => {
                assert_eq!(message_id, &plan::message_id("kd", 0));
                assert_eq!(
                    paths.iter().filter(|p| p.contains("sendMessage")).count(),
                    2
                );
            }
            SendOutcome::Failed { error, .. } if !want_sent => {
                assert!(error.contains("'starred'"), "{error}")
            }
            other => panic!("stored {stored}: {other:?}"),
        }
    }
}
