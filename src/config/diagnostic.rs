//! Config diagnostics: what is wrong, where (a primary label and optional secondary labels, possibly
//! in other files), a stable code and a help line. Implements `miette::Diagnostic` for rendering and
//! `Serialize` for `--json`.

use std::fmt;
use std::sync::Arc;

use miette::{LabeledSpan, MietteError, MietteSpanContents, SourceCode, SourceSpan, SpanContents};
use serde::Serialize;

use super::check;
use super::yaml::Span;

/// How bad a diagnostic is: errors make the load fail, warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

macro_rules! codes {
    ($($(#[$m:meta])* $variant:ident => $text:literal,)*) => {
        /// The stable code of a diagnostic, `labsync::config::<what>`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code {
            $($(#[$m])* $variant,)*
        }
        impl Code {
            /// Every code, for documentation and tests.
            pub const ALL: &[Code] = &[$(Code::$variant,)*];
            /// The code as printed: `labsync::config::<what>`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => concat!("labsync::config::", $text),)*
                }
            }
        }
    };
}

codes! {
    /// The file could not be read.
    Io => "io",
    /// The text is not valid YAML.
    YamlSyntax => "yaml_syntax",
    /// The file is too large, too deep, or has too many aliases.
    TooComplex => "too_complex",
    /// A key that is not part of the format.
    UnknownKey => "unknown_key",
    /// A value of the wrong YAML type.
    WrongType => "wrong_type",
    /// A required key is absent.
    MissingKey => "missing_key",
    /// A value outside an enumerated set, or out of range for its type.
    InvalidValue => "invalid_value",
    /// The same key twice in one mapping.
    DuplicateKey => "duplicate_key",
    /// Two labs with the same name (also across files and after pool expansion).
    DuplicateLab => "duplicate_lab",
    /// Two VMs with the same name in one template.
    DuplicateVm => "duplicate_vm",
    /// A lab names a template that does not exist.
    UnknownTemplate => "unknown_template",
    /// Two templates expect different things of the same source VM.
    SourceConflict => "source_conflict",
    /// `depends_on` names a VM that is not in the template.
    UnknownVm => "unknown_vm",
    /// `depends_on` forms a cycle.
    DependencyCycle => "dependency_cycle",
    /// A template without VMs.
    EmptyTemplate => "empty_template",
    /// A duration that does not parse (`4h`, `90m`, `1d`).
    InvalidDuration => "invalid_duration",
    /// A timestamp that is not RFC 3339.
    InvalidTimestamp => "invalid_timestamp",
    /// `expires_at` is already past.
    Expired => "expired",
    /// `ttl` and `expires_at` on one lab.
    TtlAndExpiresAt => "ttl_and_expires_at",
    /// A cron expression that does not parse.
    InvalidCron => "invalid_cron",
    /// A time zone that is not in the IANA database.
    InvalidTimezone => "invalid_timezone",
    /// `count` of 0, negative, or absurdly large.
    InvalidCount => "invalid_count",
    /// A pool name without `{{index}}`, or `{{index}}` in a lab that is not a pool.
    PoolName => "pool_name",
    /// A name outside the safe set, or one vCenter would reject.
    InvalidName => "invalid_name",
    /// A VM name longer than vCenter's 80 characters once expanded.
    NameTooLong => "name_too_long",
    /// An inventory path that is not absolute or has empty parts.
    InvalidPath => "invalid_path",
    /// A guestinfo key not under `guestinfo.`.
    GuestinfoKey => "guestinfo_key",
    /// A `{{placeholder}}` that does not exist.
    UnknownPlaceholder => "unknown_placeholder",
    /// A literal `password:` in the file.
    LiteralPassword => "literal_password",
    /// Neither or both of `password_env` and `password_file`.
    PasswordSource => "password_source",
    /// An unusable `vcenter.url`.
    InvalidUrl => "invalid_url",
    /// A malformed `tls.thumbprint`.
    InvalidThumbprint => "invalid_thumbprint",
    /// Contradictory TLS settings.
    TlsConflict => "tls_conflict",
    /// `tls.insecure: true`: certificates are not checked.
    InsecureTls => "insecure_tls",
    /// Plain `http://` to a vCenter that is not on this machine, without `insecure_http: true`.
    PlainHttp => "plain_http",
    /// `insecure_http: true` with a plain `http://` URL to another machine: the password
    /// crosses the network in clear.
    InsecureHttp => "insecure_http",
    /// A URL with `user:password@` in it.
    UrlCredentials => "url_credentials",
    /// Text with a control character other than tab and newline (vCenter refuses it).
    ControlCharacter => "control_character",
    /// `max_chain` outside 1..=255.
    MaxChain => "max_chain",
    /// A limit of zero or a negative one.
    InvalidLimit => "invalid_limit",
    /// An `apiVersion` this build does not understand.
    UnsupportedApiVersion => "unsupported_api_version",
    /// An include pattern that is not a valid glob.
    InvalidInclude => "invalid_include",
    /// An included file that resolves (through a symlink) outside the labs file's directory.
    IncludeOutside => "include_outside",
    /// An include pattern that matches no file.
    IncludeNoMatch => "include_no_match",
    /// The user settings file (TOML) is invalid.
    Settings => "settings",
    /// An included file with a key other than `apiVersion` and `labs`.
    IncludeForbiddenKey => "include_forbidden_key",
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A file the diagnostics point into: its name as shown to the user and its text.
#[derive(Debug, PartialEq, Eq)]
pub struct SourceFile {
    /// The path as the user should read it (relative where possible).
    pub name: String,
    pub text: String,
    /// `text` with secrets masked byte for byte ([`check::mask_secrets`]) and control
    /// characters shown as `?` (one per byte, so spans stay valid): what snippets show, so no
    /// diagnostic, nor a neighbouring line of one, ever prints a password or sends an escape
    /// sequence to the terminal.
    shown: String,
}

impl SourceFile {
    /// A named source.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Arc<Self> {
        let text = text.into();
        Arc::new(Self {
            name: name.into(),
            shown: without_controls(&check::mask_secrets(&text)),
            text,
        })
    }

    /// The 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        (line, col)
    }
}

impl SourceCode for SourceFile {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let c = self.shown.read_span(span, before, after)?;
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            c.data(),
            *c.span(),
            c.line(),
            c.column(),
            c.line_count(),
        )))
    }
}

/// `text` with every control character but tab, newline and carriage return replaced by `?`,
/// one per byte of its UTF-8 encoding.
fn without_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && !matches!(c, '\t' | '\n' | '\r') {
            (0..c.len_utf8()).for_each(|_| out.push('?'));
        } else {
            out.push(c);
        }
    }
    out
}

/// `text` with control characters (but tab and newline) written as `\u{1b}`: messages may
/// quote a value from the file, which must not reach the terminal as an escape sequence.
fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && !matches!(c, '\t' | '\n') {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// A place in a file, with what it shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    pub source: Arc<SourceFile>,
    pub span: Span,
    pub text: String,
}

impl Label {
    fn miette_span(&self) -> SourceSpan {
        // Clamp so a bad span can never make rendering fail.
        let len = self.source.text.len();
        let offset = self.span.offset.min(len);
        SourceSpan::new(offset.into(), self.span.len.min(len - offset))
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}
impl std::error::Error for Label {}

/// A secondary label in another file is rendered as a related note with its own snippet.
impl miette::Diagnostic for Label {
    fn severity(&self) -> Option<miette::Severity> {
        Some(miette::Severity::Advice)
    }
    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&*self.source)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(
            Some(self.text.clone()),
            self.miette_span(),
        ))))
    }
}

/// One finding about the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: Code,
    pub message: String,
    /// The primary label first, then secondary ones.
    pub labels: Vec<Label>,
    pub help: Option<String>,
    /// Never show the source text around the labels (it holds a secret).
    pub redact_snippet: bool,
}

impl Diagnostic {
    /// An error.
    pub fn error(code: Code, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            code,
            message: message.into(),
            labels: Vec::new(),
            help: None,
            redact_snippet: false,
        }
    }
    /// A warning.
    pub fn warning(code: Code, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(code, message)
        }
    }
    /// Adds a label (the first one added is the primary one).
    pub fn label(mut self, source: &Arc<SourceFile>, span: Span, text: impl Into<String>) -> Self {
        self.labels.push(Label {
            source: Arc::clone(source),
            span,
            text: text.into(),
        });
        self
    }
    /// Sets the help line.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
    /// Sets the help line if there is one.
    pub fn maybe_help(mut self, help: Option<String>) -> Self {
        if help.is_some() {
            self.help = help;
        }
        self
    }
    /// Renders this diagnostic without source snippets (places are still named).
    pub fn redacted(mut self) -> Self {
        self.redact_snippet = true;
        self
    }
    /// Is this an error (as opposed to a warning)?
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
    fn primary_source(&self) -> Option<&Arc<SourceFile>> {
        self.labels.first().map(|l| &l.source)
    }
    /// `file:line:col` of the primary label, if any.
    pub fn location(&self) -> Option<String> {
        let l = self.labels.first()?;
        let (line, col) = l.source.line_col(l.span.offset);
        Some(format!("{}:{line}:{col}", l.source.name))
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
impl std::error::Error for Diagnostic {}

impl miette::Diagnostic for Diagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code.as_str()))
    }
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_deref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn SourceCode> {
        if self.redact_snippet {
            return None;
        }
        self.primary_source().map(|s| &**s as &dyn SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.redact_snippet {
            return None;
        }
        let primary = self.primary_source()?;
        let same_file = self
            .labels
            .iter()
            .enumerate()
            .filter(move |(_, l)| Arc::ptr_eq(&l.source, primary))
            .map(|(i, l)| {
                let text = Some(l.text.clone()).filter(|t| !t.is_empty());
                if i == 0 {
                    LabeledSpan::new_primary_with_span(text, l.miette_span())
                } else {
                    LabeledSpan::new_with_span(text, l.miette_span())
                }
            });
        Some(Box::new(same_file))
    }
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        let primary = self.primary_source()?;
        let mut others = self
            .labels
            .iter()
            .filter(|l| !Arc::ptr_eq(&l.source, primary))
            .map(|l| l as &dyn miette::Diagnostic)
            .peekable();
        others.peek()?;
        Some(Box::new(others))
    }
}

#[derive(Serialize)]
struct JsonLabel<'a> {
    file: &'a str,
    line: usize,
    column: usize,
    offset: usize,
    length: usize,
    label: &'a str,
}

impl Serialize for Diagnostic {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Json<'a> {
            severity: Severity,
            code: Code,
            message: &'a str,
            labels: Vec<JsonLabel<'a>>,
            help: Option<&'a str>,
        }
        let labels = self
            .labels
            .iter()
            .map(|l| {
                let (line, column) = l.source.line_col(l.span.offset);
                JsonLabel {
                    file: &l.source.name,
                    line,
                    column,
                    offset: l.span.offset,
                    length: l.span.len,
                    label: &l.text,
                }
            })
            .collect();
        Json {
            severity: self.severity,
            code: self.code,
            message: &self.message,
            labels,
            help: self.help.as_deref(),
        }
        .serialize(s)
    }
}

/// Renders diagnostics for a terminal: miette's graphical report, `width` columns, colors on or
/// off. Rendering into a `String` keeps it testable.
pub fn render(diags: &[Diagnostic], width: usize, color: bool) -> String {
    let theme = if color {
        miette::GraphicalTheme::unicode()
    } else {
        miette::GraphicalTheme::unicode_nocolor()
    };
    let handler = miette::GraphicalReportHandler::new_themed(theme)
        .with_width(width)
        .with_links(false);
    let mut out = String::new();
    for d in diags {
        let mut one = String::new();
        let d = &printable(without_giant_snippets(d));
        // Writing into a String cannot fail; a render error would only drop this report.
        if handler.render_report(&mut one, d).is_err() {
            one = format!("{}: {}\n", d.code, d.message);
        }
        out.push_str(&one);
        out.push('\n');
    }
    out
}

/// The diagnostic with its message, help and labels safe for a terminal ([`escape_controls`]).
fn printable(mut d: Diagnostic) -> Diagnostic {
    d.message = escape_controls(&d.message);
    d.help = d.help.as_deref().map(escape_controls);
    for l in &mut d.labels {
        l.text = escape_controls(&l.text);
    }
    d
}

/// Lines longer than this are not shown as snippets (a 10 MB line of brackets would be).
const MAX_SNIPPET_LINE: usize = 400;

/// A copy of the diagnostic in which labels on overlong lines (or on secrets) are replaced by
/// their location in the message.
fn without_giant_snippets(d: &Diagnostic) -> Diagnostic {
    let giant = |l: &Label| {
        let text = &l.source.text;
        let at = l.span.offset.min(text.len());
        let start = text
            .get(..at)
            .and_then(|t| t.rfind('\n'))
            .map_or(0, |i| i + 1);
        let end = text
            .get(at..)
            .and_then(|t| t.find('\n'))
            .map_or(text.len(), |i| at + i);
        end - start > MAX_SNIPPET_LINE
    };
    if !d.redact_snippet && !d.labels.iter().any(giant) {
        return d.clone();
    }
    let mut d = d.clone();
    let places: Vec<String> = d
        .labels
        .iter()
        .map(|l| {
            let (line, col) = l.source.line_col(l.span.offset);
            format!("{}:{line}:{col}", l.source.name)
        })
        .collect();
    d.message = format!("{} (at {})", d.message, places.join(", "));
    d.labels.clear();
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_namespaced() {
        let mut seen = std::collections::BTreeSet::new();
        for c in Code::ALL {
            assert!(c.as_str().starts_with("labsync::config::"));
            assert!(seen.insert(c.as_str()), "duplicate {c}");
        }
    }

    #[test]
    fn line_and_column_count_characters() {
        let f = SourceFile::new("x.yaml", "a: 1\nbé: 2\n");
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(5), (2, 1));
        assert_eq!(f.line_col(9), (2, 4));
    }

    #[test]
    fn no_control_character_reaches_the_terminal() {
        let f = SourceFile::new("x.yaml", "name: a\u{1b}[31mb\u{85}c\n");
        let d = Diagnostic::error(Code::InvalidName, "name `a\u{1b}[31m` is bad")
            .label(&f, Span::new(6, 12), "this \u{7} name")
            .help("not \u{0}");
        let out = render(&[d], 80, false);
        assert!(!out.chars().any(|c| c.is_control() && c != '\n'), "{out:?}");
        assert!(out.contains("a?[31mb??c"), "{out}");
        assert!(out.contains("name `a\\u{1b}[31m` is bad"), "{out}");
    }

    #[test]
    fn a_diagnostic_renders_with_file_line_and_help() {
        let f = SourceFile::new("labs.yaml", "labs:\n  - name: a\n    template: k8\n");
        let d = Diagnostic::error(Code::UnknownTemplate, "unknown template `k8`")
            .label(&f, Span::new(32, 2), "not defined in `templates`")
            .help("did you mean `k8s`?");
        let out = render(&[d], 80, false);
        assert!(out.contains("labs.yaml:3:15"), "{out}");
        assert!(out.contains("did you mean `k8s`?"), "{out}");
        assert!(out.contains("labsync::config::unknown_template"), "{out}");
    }
}
