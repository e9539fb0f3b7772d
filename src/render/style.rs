//! How output is painted: one `Style` value decides whether ANSI colors are written, so every
//! printer renders the same text with or without them (tests render without).

use std::fmt;
use std::io::IsTerminal;

use crate::config::settings::ColorChoice;

/// What a piece of text means, which decides its color.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Something is made: green.
    Create,
    /// Something goes away: red.
    Destroy,
    /// Something is made again: yellow.
    Replace,
    /// Bookkeeping or hygiene: cyan.
    Change,
    /// An error: bold red.
    Error,
    /// A warning: bold yellow.
    Warning,
    /// Headings and names: bold.
    Strong,
    /// Secondary detail: dim.
    Dim,
}

/// Whether to write colors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Style {
    color: bool,
}

impl Style {
    /// No colors (files, pipes, tests).
    pub fn plain() -> Self {
        Self { color: false }
    }

    /// Colors on.
    pub fn colored() -> Self {
        Self { color: true }
    }

    /// True when colors are written.
    pub fn is_colored(&self) -> bool {
        self.color
    }

    /// `text` in the color of `tone` (or as is, without colors).
    pub fn paint<T: fmt::Display>(&self, tone: Tone, text: T) -> Painted<T> {
        Painted {
            text,
            code: self.color.then_some(code(tone)),
        }
    }
}

/// Whether each of this process's two output streams is painted: the one decision every
/// printer, diagnostic and the tracing subscriber follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Colors {
    /// Plans, status and reports.
    pub stdout: Style,
    /// Diagnostics, warnings, errors and the tracing subscriber's log lines.
    pub stderr: Style,
}

impl Colors {
    /// Decides from the resolved color setting (`--color`, `LABSYNC_COLOR`, the settings file
    /// and `NO_COLOR`, folded by `config::settings`) and whether each stream is a terminal: under
    /// `auto` a stream is painted only when it is itself a terminal, so `apply > log 2>&1` writes
    /// no escape codes into `log` even when run from a terminal.
    pub fn decide(choice: ColorChoice, stdout_is_terminal: bool, stderr_is_terminal: bool) -> Self {
        let for_stream = |is_terminal| Style {
            color: match choice {
                ColorChoice::Always => true,
                ColorChoice::Never => false,
                ColorChoice::Auto => is_terminal,
            },
        };
        Self {
            stdout: for_stream(stdout_is_terminal),
            stderr: for_stream(stderr_is_terminal),
        }
    }

    /// [`Colors::decide`] for this process's stdout and stderr.
    pub fn of_process(choice: ColorChoice) -> Self {
        Self::decide(
            choice,
            std::io::stdout().is_terminal(),
            std::io::stderr().is_terminal(),
        )
    }
}

/// Text with an optional ANSI color, written by `Display`.
pub struct Painted<T> {
    text: T,
    code: Option<&'static str>,
}

impl<T: fmt::Display> fmt::Display for Painted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            Some(code) => write!(f, "\x1b[{code}m{}\x1b[0m", self.text),
            None => self.text.fmt(f),
        }
    }
}

fn code(tone: Tone) -> &'static str {
    match tone {
        Tone::Create => "32",
        Tone::Destroy => "31",
        Tone::Replace => "33",
        Tone::Change => "36",
        Tone::Error => "1;31",
        Tone::Warning => "1;33",
        Tone::Strong => "1",
        Tone::Dim => "2",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_stream_is_colored_by_the_setting_and_whether_it_is_itself_a_terminal() {
        use ColorChoice::{Always, Auto, Never};
        // (setting, stdout is a terminal, stderr is a terminal) -> (stdout colored, stderr colored)
        let cases = [
            (Auto, true, true, (true, true)),
            // `labsync apply 2> log`, `labsync apply > log 2>&1`, a pipe or CI.
            (Auto, true, false, (true, false)),
            (Auto, false, false, (false, false)),
            // `labsync status | less` with warnings on the terminal.
            (Auto, false, true, (false, true)),
            (Always, false, false, (true, true)),
            (Never, true, true, (false, false)),
            (Never, false, true, (false, false)),
        ];
        for (choice, out_tty, err_tty, (out, err)) in cases {
            let c = Colors::decide(choice, out_tty, err_tty);
            assert_eq!(
                (c.stdout.is_colored(), c.stderr.is_colored()),
                (out, err),
                "{choice:?} stdout tty={out_tty} stderr tty={err_tty}"
            );
        }
    }

    #[test]
    fn plain_style_writes_the_text_alone_and_colored_wraps_it_in_ansi_codes() {
        assert_eq!(Style::plain().paint(Tone::Create, "+").to_string(), "+");
        assert_eq!(
            Style::colored().paint(Tone::Destroy, "-").to_string(),
            "\x1b[31m-\x1b[0m"
        );
    }
}
