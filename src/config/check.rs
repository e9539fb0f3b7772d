//! Checks of single values (durations, timestamps, cron, time zones, thumbprints, URLs,
//! placeholders). Pure functions returning what was parsed or a message and a help line.

use jiff::{SignedDuration, Timestamp};

use super::suggest::did_you_mean;

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
pub fn cron(s: &str) -> Result<(), Refusal> {
    s.parse::<croner::Cron>().map(|_| ()).map_err(|e| {
        Refusal::new(
            format!("`{s}` is not a valid cron expression: {e}"),
            "five fields: minute hour day-of-month month day-of-week, e.g. `0 2 * * *` for 02:00 daily",
        )
    })
}

/// An IANA time zone name known to the system's time zone database.
pub fn timezone(s: &str) -> Result<(), Refusal> {
    jiff::tz::TimeZone::get(s).map(|_| ()).map_err(|_| {
        Refusal::new(
            format!("`{s}` is not a known IANA time zone"),
            "use a name such as `UTC`, `Europe/Berlin` or `America/New_York`",
        )
    })
}

/// A SHA-256 certificate fingerprint: 32 bytes as hex, with or without colons. Returns it in
/// the canonical form `AB:CD:…` (uppercase, colons).
pub fn thumbprint(s: &str) -> Result<String, Refusal> {
    let hexits: String = s.chars().filter(|c| *c != ':').collect();
    let help = "64 hex digits, e.g. from `openssl x509 -noout -fingerprint -sha256`";
    if !hexits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(Refusal::new(
            "the thumbprint contains characters other than hex digits and colons",
            help,
        ));
    }
    match hexits.len() {
        64 => {}
        40 => {
            return Err(Refusal::new(
                "this is a SHA-1 thumbprint (20 bytes); labsync pins SHA-256 (32 bytes)",
                help,
            ));
        }
        n => {
            return Err(Refusal::new(
                format!("a SHA-256 thumbprint has 64 hex digits, this one has {n}"),
                help,
            ));
        }
    }
    let upper = hexits.to_ascii_uppercase();
    let pairs: Vec<&str> = (0..32)
        .filter_map(|i| upper.get(2 * i..2 * i + 2))
        .collect();
    Ok(pairs.join(":"))
}

/// What a `vcenter.url` points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlKind {
    /// A real vCenter (or a simulator on loopback) over HTTP(S).
    Http,
    /// The embedded simulator with this inventory file (relative to the config file).
    Sim(String),
}

/// `https://host/sdk`, `http://host/sdk` or `sim://INVENTORY`.
pub fn url(s: &str) -> Result<UrlKind, Refusal> {
    let help = "use `https://vcenter.example.com/sdk`, or `sim://examples/sim-inventory.yaml` for the embedded simulator";
    if let Some(path) = s.strip_prefix("sim://") {
        if path.is_empty() {
            return Err(Refusal::new("`sim://` needs an inventory file", help));
        }
        return Ok(UrlKind::Sim(path.to_string()));
    }
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .ok_or_else(|| Refusal::new(format!("`{s}` is not an http(s):// or sim:// URL"), help))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(Refusal::new(format!("`{s}` has no host"), help));
    }
    Ok(UrlKind::Http)
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
        assert_eq!(canonical.len(), 95);
        assert_eq!(thumbprint(&canonical), Ok(canonical.clone()));
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
        assert_eq!(url("https://vc.example.com/sdk"), Ok(UrlKind::Http));
        assert_eq!(url("sim://inv.yaml"), Ok(UrlKind::Sim("inv.yaml".into())));
        assert!(url("ftp://x").is_err());
        assert!(url("https:///sdk").is_err());
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
