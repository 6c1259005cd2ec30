//! Notifications: an HTTP POST to `NOTIFICATION_URL` after a backup, with a JSON body, or
//! the `{"text": …}` body that Slack's incoming webhooks take when the URL is one
//! (hooks.slack.com). A notification that cannot be delivered is retried, then logged; it
//! never fails the backup it reports.

use std::time::Duration;

use serde_json::{Value, json};

/// The longest pause between two attempts.
const MAX_PAUSE: Duration = Duration::from_secs(30);

/// Where and how to send.
#[derive(Clone, Debug)]
pub struct Notifier {
    pub url: String,
    pub timeout: Duration,
    /// Attempts after the first.
    pub retries: u32,
    /// Pause before the first retry; doubled each time.
    pub backoff: Duration,
}

/// Slack's incoming webhooks take only their own body shape.
fn is_slack(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or(url);
    rest.starts_with("hooks.slack.com/")
}

/// The body for `url`: `event` as is, or Slack's `{"text": summary}`.
pub fn body(url: &str, event: &Value, summary: &str) -> Value {
    if is_slack(url) {
        json!({ "text": summary })
    } else {
        event.clone()
    }
}

impl Notifier {
    /// Posts `body`; on failure returns what the last attempt met. Server errors (5xx),
    /// 429 and transport errors are retried; other 4xx are not (retrying cannot help).
    pub fn send(&self, body: &Value) -> Result<(), String> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(self.timeout))
            .http_status_as_error(false)
            .build()
            .into();
        let mut pause = self.backoff;
        let mut last = String::new();
        for attempt in 0..=self.retries {
            if attempt > 0 {
                std::thread::sleep(pause);
                // a notification runs while the backup directory is locked: never long
                pause = (pause * 2).min(MAX_PAUSE);
            }
            match agent.post(&self.url).send_json(body) {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) => {
                    let status = r.status();
                    last = format!("the server answered {status}");
                    if status.is_client_error() && status.as_u16() != 429 {
                        break;
                    }
                }
                Err(e) => last = e.to_string(),
            }
        }
        // the URL may hold a token (Slack's do): name the host only
        Err(format!(
            "notification to {} failed: {last}",
            host_of(&self.url)
        ))
    }
}

/// The host part of a URL, for messages: no path, query or user and password.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_urls_get_slack_bodies_and_messages_hide_paths() {
        let event = json!({"result": "ok"});
        assert_eq!(
            body("https://hooks.slack.com/services/T/B/x", &event, "hi"),
            json!({"text": "hi"})
        );
        assert_eq!(body("https://example.com/hook", &event, "hi"), event);
        assert_eq!(
            host_of("https://hooks.slack.com/services/T/B/secret"),
            "hooks.slack.com"
        );
        assert_eq!(
            host_of("https://bot:s3cret@alerts.example:8443/hook?k=v"),
            "alerts.example:8443"
        );
    }
}
