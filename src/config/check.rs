//! Checks of single values (durations, timestamps, cron, time zones, thumbprints, URLs,
//! placeholders). Pure functions returning what was parsed or a message and a help line.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use super::suggest::did_you_mean;
use crate::model::{CronExpr, Thumbprint};

/// Why a value was refused: a message and an optional help line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub message: String,
    pub help: Option<String>,
}

impl Refusal {
    fn new(message: impl Into<String>, help: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            help: Some(help.into()),
        }
    }
}

/// A positive duration in jiff's friendly format (`4h`, `90m`, `1d`, `2h30m`). Days are 24 hours.
pub fn duration(s: &str) -> Result<SignedDuration, Refusal> {
    let help = "write a duration such as `4h`, `90m`, `1d` or `2h30m`";
    let d = parse_duration(s.trim())
        .ok_or_else(|| Refusal::new(format!("`{s}` is not a duration"), help))?;
    if d.is_zero() || d.is_negative() {
        return Err(Refusal::new(
            format!("duration `{s}` must be positive"),
            help,
        ));
    }
    Ok(d)
}

/// A duration that may be zero (`0s` turns a grace off), else as [`duration`].
pub fn duration_or_zero(s: &str) -> Result<SignedDuration, Refusal> {
    match parse_duration(s.trim()) {
        Some(d) if d.is_zero() => Ok(d),
        _ => duration(s),
    }
}

fn parse_duration(s: &str) -> Option<SignedDuration> {
    // SignedDuration does not take calendar units; a span with days does when days are 24h.
    if let Ok(d) = s.parse::<SignedDuration>() {
        return Some(d);
    }
    let span: jiff::Span = s.parse().ok()?;
    if span.get_years() != 0 || span.get_months() != 0 || span.get_weeks() != 0 {
        return None;
    }
    span.to_duration(jiff::SpanRelativeTo::days_are_24_hours())
        .ok()
}

/// An RFC 3339 timestamp with an offset, e.g. `2026-12-01T18:00:00Z`.
pub fn timestamp(s: &str) -> Result<Timestamp, Refusal> {
    s.trim().parse::<Timestamp>().map_err(|e| {
        Refusal::new(
            format!("`{s}` is not an RFC 3339 timestamp: {e}"),
            "write a date, time and offset such as `2026-12-01T18:00:00Z` or `2026-12-01T19:00:00+01:00`",
        )
    })
}

/// A cron expression croner accepts (5 fields, or 6 with seconds, or `@daily` and the like).
pub fn cron(s: &str) -> Result<CronExpr, Refusal> {
    CronExpr::parse(s).map_err(|e| {
        Refusal::new(
            format!("`{s}` is not a valid cron expression: {e}"),
            "five fields: minute hour day-of-month month day-of-week, e.g. `0 2 * * *` for 02:00 daily",
        )
    })
}

/// An IANA time zone name, looked up in the database bundled with labsync (never the host's, so
/// a plan does not depend on the machine).
pub fn timezone(s: &str) -> Result<TimeZone, Refusal> {
    crate::model::schedule::time_zone(s).ok_or_else(|| {
        Refusal::new(
            format!("`{s}` is not a known IANA time zone"),
            "use a name such as `UTC`, `Europe/Berlin` or `America/New_York`",
        )
    })
}

/// A SHA-256 certificate fingerprint: 32 bytes as hex, with or without colons, parsed by
/// [`Thumbprint::parse`] (the client's own parser), with a help line.
pub fn thumbprint(s: &str) -> Result<Thumbprint, Refusal> {
    Thumbprint::parse(s).map_err(|e| Refusal::new(e.to_string(), Thumbprint::HELP))
}

/// What a `vcenter.url` points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlKind {
    /// A real vCenter (or a simulator already running) over HTTP(S).
    Http {
        /// Plain `http://` to a host other than this machine: the password and the session
        /// cookie would cross the network in clear (allowed only with `insecure_http: true`).
        cleartext_remote: bool,
    },
    /// The embedded simulator with this inventory file (relative to the config file).
    Sim(String),
}

/// `https://host/sdk`, `http://host/sdk` or `sim://INVENTORY`. A URL carrying credentials
/// (`https://user:password@host`) is refused; no message here ever repeats them.
pub fn url(s: &str) -> Result<UrlKind, Refusal> {
    let help = "use `https://vcenter.example.com/sdk`, or `sim://examples/sim-inventory.yaml` for the embedded simulator";
    if let Some(path) = s.strip_prefix("sim://") {
        if path.is_empty() {
            return Err(Refusal::new("`sim://` needs an inventory file", help));
        }
        return Ok(UrlKind::Sim(path.to_string()));
    }
    if url_userinfo(s).is_some() {
        // Also `user:password@host` without a scheme: refused here so that the message below
        // never repeats it.
        return Err(Refusal::new(
            "the URL carries credentials (`user:password@`): they would be sent with every request and end up in logs and traces",
            "remove `user:…@` from the URL; name the user with `username:` and give the password with `password_env:` or `password_file:`",
        ));
    }
    let (https, rest) = match (s.strip_prefix("https://"), s.strip_prefix("http://")) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        (None, None) => {
            return Err(Refusal::new(
                format!("`{}` is not an http(s):// or sim:// URL", mask_secrets(s)),
                help,
            ));
        }
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = url_host(authority);
    if host.is_empty() || authority.contains(char::is_whitespace) {
        return Err(Refusal::new(
            format!("`{}` has no host", mask_secrets(s)),
            help,
        ));
    }
    Ok(UrlKind::Http {
        cleartext_remote: !https && !is_loopback_host(host),
    })
}

/// Does this URL carry credentials (`user:password@` before the host)?
pub fn has_url_credentials(s: &str) -> bool {
    !s.starts_with("sim://") && url_userinfo(s).is_some()
}

/// The host of a URL authority (`host`, `host:port`, `[::1]:port`), without brackets.
fn url_host(authority: &str) -> &str {
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or("");
    }
    authority.split(':').next().unwrap_or("")
}

/// Is this host name or address this machine (`localhost`, `127.0.0.0/8`, `::1`)? A URL to it
/// never leaves the machine, so plain HTTP is safe there (the embedded simulator, a test server).
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The byte range of the credentials in `scheme://user:password@host…` (`user:password`), if
/// the URL's authority has any. Without `scheme://`, the text is read as starting with the
/// authority (`user:password@host/sdk`).
fn url_userinfo(s: &str) -> Option<std::ops::Range<usize>> {
    let start = s.find("://").map_or(0, |i| i + 3);
    let authority_len = s[start..]
        .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace())
        .unwrap_or(s.len() - start);
    let at = s[start..start + authority_len].rfind('@')?;
    Some(start..start + at)
}

/// `text` with every secret it visibly holds replaced by `*`, byte for byte (so offsets into it
/// stay valid): the password part of `scheme://user:password@` URLs (and of a `url:` value
/// without a scheme), and the value of a literal `password:` key. Diagnostics show snippets of
/// this masked text, never the secret itself, also when it only sits on a neighbouring line.
pub fn mask_secrets(text: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    let mut line_start = 0;
    let mask_userinfo = |bytes: &mut Vec<u8>, start: usize, end: usize| {
        // Keep the user name; hide what follows its colon (all of it when there is none).
        let user_end = text[start..end].find(':').map_or(start, |c| start + c + 1);
        bytes[user_end..end].fill(b'*');
    };
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let mut from = 0;
        while let Some(tail) = body.get(from..).filter(|t| t.contains("://")) {
            let Some(r) = url_userinfo(tail) else {
                from += tail.find("://").map_or(tail.len(), |i| i + 3);
                continue;
            };
            mask_userinfo(
                &mut bytes,
                line_start + from + r.start,
                line_start + from + r.end,
            );
            from += r.end + 1;
        }
        if let Some(v) = key_value(body, "url")
            && !body[v.clone()].contains("://")
            && let Some(r) = url_userinfo(&body[v.clone()])
        {
            mask_userinfo(
                &mut bytes,
                line_start + v.start + r.start,
                line_start + v.start + r.end,
            );
        }
        if let Some(v) = key_value(body, "password") {
            bytes[line_start + v.start..line_start + v.end].fill(b'*');
        }
        line_start += line.len();
    }
    // Only whole UTF-8 sequences were replaced by ASCII, so this cannot fail; fall back to the
    // text with every non-space character masked rather than ever showing the original.
    String::from_utf8(bytes).unwrap_or_else(|_| {
        text.chars()
            .map(|c| if c.is_whitespace() { c } else { '*' })
            .collect()
    })
}

/// The value's byte range on a line `KEY: VALUE` (any indentation, `- ` or quotes around the
/// key), up to a ` #` comment; `None` for another key or an empty value.
fn key_value(line: &str, key: &str) -> Option<std::ops::Range<usize>> {
    let trimmed = line.trim_start_matches([' ', '\t', '-']);
    let indent = line.len() - trimmed.len();
    let key_len = [key.to_string(), format!("\"{key}\""), format!("'{key}'")]
        .iter()
        .find(|k| trimmed.starts_with(k.as_str()))?
        .len();
    let after = trimmed[key_len..].strip_prefix(':')?;
    if !(after.is_empty() || after.starts_with([' ', '\t'])) {
        return None;
    }
    let value_start = indent + key_len + 1 + (after.len() - after.trim_start().len());
    let value = &line[value_start..];
    let value_len = value.find(" #").unwrap_or(value.len());
    (value_len > 0).then(|| value_start..value_start + value_len)
}

/// An environment variable name: letters, digits and `_`, not starting with a digit.
pub fn env_var_name(s: &str) -> Result<(), Refusal> {
    let ok = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Refusal::new(
            format!("`{s}` is not an environment variable name"),
            "name the variable that holds the password, e.g. `LABSYNC_PASSWORD`",
        ))
    }
}

/// A guestinfo key: `guestinfo.` followed by letters, digits, `.`, `_` or `-`.
pub fn guestinfo_key(s: &str) -> Result<(), Refusal> {
    let rest = s.strip_prefix("guestinfo.").ok_or_else(|| {
        Refusal::new(
            format!("`{s}` is not under `guestinfo.`"),
            format!(
                "the guest can only read `guestinfo.*` keys; write `guestinfo.{}`",
                s.rsplit('.').next().unwrap_or(s)
            ),
        )
    })?;
    if rest.is_empty()
        || !rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(Refusal::new(
            format!("`{s}` is not a valid guestinfo key"),
            "after `guestinfo.` use letters, digits, `.`, `_` or `-`",
        ));
    }
    Ok(())
}

/// The placeholders a template's guestinfo values may use.
pub const PLACEHOLDERS: &[&str] = &["lab", "vm", "index", "owner"];

/// A `{{name}}` occurrence in a text: its name and byte range (braces included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    pub name: String,
    pub start: usize,
    pub end: usize,
}

/// Finds every `{{name}}` in `text`; an unclosed `{{` is an error at its byte offset.
pub fn placeholders(text: &str) -> Result<Vec<Placeholder>, usize> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = text.get(from..).and_then(|t| t.find("{{")) {
        let start = from + i;
        let close = text
            .get(start + 2..)
            .and_then(|t| t.find("}}"))
            .ok_or(start)?;
        let end = start + 2 + close + 2;
        let name = text.get(start + 2..start + 2 + close).unwrap_or("").trim();
        out.push(Placeholder {
            name: name.to_string(),
            start,
            end,
        });
        from = end;
    }
    Ok(out)
}

/// Refusal for a placeholder name not in `allowed`.
pub fn unknown_placeholder(name: &str, allowed: &[&str]) -> Refusal {
    let list = allowed
        .iter()
        .map(|p| format!("{{{{{p}}}}}"))
        .collect::<Vec<_>>()
        .join(", ");
    Refusal {
        message: format!("unknown placeholder `{{{{{name}}}}}`"),
        help: Some(match did_you_mean(name, allowed.iter().copied()) {
            Some(d) => format!("{d} (placeholders here: {list})"),
            None => format!("placeholders here: {list}"),
        }),
    }
}

/// Replaces every `{{name}}` with its value; unknown names are left as they are (the validator
/// refused them before expansion).
pub fn render(text: &str, values: &[(&str, &str)]) -> String {
    let Ok(found) = placeholders(text) else {
        return text.to_string();
    };
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for p in found {
        out.push_str(text.get(last..p.start).unwrap_or(""));
        match values.iter().find(|(k, _)| *k == p.name) {
            Some((_, v)) => out.push_str(v),
            None => out.push_str(text.get(p.start..p.end).unwrap_or("")),
        }
        last = p.end;
    }
    out.push_str(text.get(last..).unwrap_or(""));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_the_friendly_format_are_accepted() {
        for (s, secs) in [
            ("4h", 4 * 3600),
            ("90m", 5400),
            ("1d", 86400),
            ("2h30m", 9000),
        ] {
            assert_eq!(duration(s).map(|d| d.as_secs()), Ok(secs), "{s}");
        }
    }

    #[test]
    fn bad_zero_and_calendar_durations_are_refused() {
        for s in ["4 hours later", "0h", "-1h", "1mo", "", "1y"] {
            assert!(duration(s).is_err(), "{s}");
        }
    }

    #[test]
    fn timestamps_need_an_offset() {
        assert!(timestamp("2026-12-01T18:00:00Z").is_ok());
        assert!(timestamp("2026-12-01T18:00:00").is_err());
        assert!(timestamp("tomorrow").is_err());
    }

    #[test]
    fn cron_and_time_zones_are_checked() {
        assert!(cron("0 2 * * *").is_ok());
        assert!(cron("0 25 * * *").is_err());
        assert!(timezone("Europe/Berlin").is_ok());
        assert!(timezone("Europe/Bonn").is_err());
    }

    #[test]
    fn thumbprints_are_sha256_with_or_without_colons() {
        let bare = "ab".repeat(32);
        let canonical = thumbprint(&bare).unwrap();
        assert_eq!(canonical.as_str().len(), 95);
        assert_eq!(thumbprint(canonical.as_str()), Ok(canonical.clone()));
        assert!(
            thumbprint(&"ab".repeat(20))
                .unwrap_err()
                .message
                .contains("SHA-1")
        );
        assert!(thumbprint("zz").is_err());
    }

    #[test]
    fn urls_are_https_http_or_sim() {
        let tls = Ok(UrlKind::Http {
            cleartext_remote: false,
        });
        assert_eq!(url("https://vc.example.com/sdk"), tls);
        assert_eq!(url("sim://inv.yaml"), Ok(UrlKind::Sim("inv.yaml".into())));
        assert!(url("ftp://x").is_err());
        assert!(url("https:///sdk").is_err());
    }

    #[test]
    fn plain_http_is_cleartext_unless_the_host_is_this_machine() {
        let local = Ok(UrlKind::Http {
            cleartext_remote: false,
        });
        for u in [
            "http://127.0.0.1:8989/sdk",
            "http://127.8.0.1/sdk",
            "http://localhost/sdk",
            "http://LOCALHOST:80/sdk",
            "http://[::1]:8989/sdk",
        ] {
            assert_eq!(url(u), local, "{u}");
        }
        for u in [
            "http://vc.example.com/sdk",
            "http://10.0.0.5:80/sdk",
            "http://localhost.example.com/sdk",
            "http://[2001:db8::1]/sdk",
        ] {
            assert_eq!(
                url(u),
                Ok(UrlKind::Http {
                    cleartext_remote: true
                }),
                "{u}"
            );
        }
    }

    #[test]
    fn credentials_in_a_url_are_refused_without_repeating_them() {
        for u in [
            "https://admin:hunter2@vc.example.com/sdk",
            "http://admin:hunter2@127.0.0.1/sdk",
            "https://hunter2@vc.example.com",
            "ftp://admin:hunter2@x",
        ] {
            let r = url(u).unwrap_err();
            assert!(!r.message.contains("hunter2"), "{u}: {}", r.message);
            assert!(!r.help.unwrap_or_default().contains("hunter2"), "{u}");
        }
    }

    #[test]
    fn secrets_are_masked_byte_for_byte() {
        let text = "url: https://admin:hunter2@vc/sdk # x\n  password: \"s3cr€t\" # no\n- 'password':x\nother: https://tok@h and http://u:p@h, sim://a\n  url: admin:pw@vc/sdk\nowner: a@example.com\n";
        let m = mask_secrets(text);
        assert_eq!(m.len(), text.len());
        assert_eq!(
            m,
            "url: https://admin:*******@vc/sdk # x\n  password: ********** # no\n- 'password':x\nother: https://***@h and http://u:*@h, sim://a\n  url: admin:**@vc/sdk\nowner: a@example.com\n"
        );
        assert_eq!(mask_secrets("plain text\n"), "plain text\n");
    }

    #[test]
    fn placeholders_are_found_and_rendered() {
        let p = placeholders("{{lab}}-{{ vm }}").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].name, "vm");
        assert_eq!(placeholders("a {{lab"), Err(2));
        assert_eq!(
            render("{{lab}}-{{vm}}-{{x}}", &[("lab", "a"), ("vm", "db")]),
            "a-db-{{x}}"
        );
    }

    #[test]
    fn guestinfo_keys_must_be_under_guestinfo() {
        assert!(guestinfo_key("guestinfo.hostname").is_ok());
        assert!(guestinfo_key("hostname").is_err());
        assert!(guestinfo_key("guestinfo.").is_err());
        assert!(guestinfo_key("guestinfo.a b").is_err());
    }
}
