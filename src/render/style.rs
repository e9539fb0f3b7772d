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

    /// Decides from the resolved `--color` setting (which already folds in `NO_COLOR`, see
    /// `config::settings`) and whether the output is a terminal.
    pub fn resolve(choice: ColorChoice, is_terminal: bool) -> Self {
        let color = match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => is_terminal,
        };
        Self { color }
    }

    /// [`Style::resolve`] for this process's stdout.
    pub fn for_stdout(choice: ColorChoice) -> Self {
        Self::resolve(choice, std::io::stdout().is_terminal())
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
    fn colors_follow_the_setting_and_the_terminal() {
        let cases = [
            (ColorChoice::Auto, true, true),
            (ColorChoice::Auto, false, false),
            (ColorChoice::Always, false, true),
            (ColorChoice::Never, true, false),
        ];
        for (choice, tty, want) in cases {
            assert_eq!(
                Style::resolve(choice, tty).is_colored(),
                want,
                "{choice:?} tty={tty}"
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
