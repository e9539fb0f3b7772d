//! A plain-text table: columns padded to their widest cell, cells optionally painted after
//! padding (so color codes never break the alignment), trailing spaces trimmed.

use std::io::{self, Write};

use crate::render::style::{Style, Tone};

/// One cell: text and an optional tone.
pub(super) struct Cell {
    pub text: String,
    pub tone: Option<Tone>,
}

impl Cell {
    /// An unpainted cell.
    pub(super) fn plain(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            tone: None,
        }
    }

    /// A painted cell.
    pub(super) fn toned(text: impl Into<String>, tone: Tone) -> Self {
        Self {
            text: text.into(),
            tone: Some(tone),
        }
    }
}

/// Writes `headers` and `rows`, two spaces between columns.
pub(super) fn write_table<W: Write>(
    w: &mut W,
    headers: &[&str],
    rows: &[Vec<Cell>],
    style: Style,
) -> io::Result<()> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(wd) = widths.get_mut(i) {
                *wd = (*wd).max(cell.text.chars().count());
            }
        }
    }
    let head: Vec<Cell> = headers
        .iter()
        .map(|h| Cell::toned(*h, Tone::Strong))
        .collect();
    write_row(w, &head, &widths, style)?;
    for row in rows {
        write_row(w, row, &widths, style)?;
    }
    Ok(())
}

fn write_row<W: Write>(w: &mut W, row: &[Cell], widths: &[usize], style: Style) -> io::Result<()> {
    // The last non-empty cell is not padded, so lines carry no trailing spaces.
    let last = row.iter().rposition(|c| !c.text.is_empty()).unwrap_or(0);
    let mut line = String::new();
    for (i, cell) in row.iter().enumerate().take(last + 1) {
        if i > 0 {
            line.push_str("  ");
        }
        let pad = if i == last {
            0
        } else {
            widths
                .get(i)
                .copied()
                .unwrap_or(0)
                .saturating_sub(cell.text.chars().count())
        };
        match cell.tone {
            Some(t) => line.push_str(&style.paint(t, &cell.text).to_string()),
            None => line.push_str(&cell.text),
        }
        line.push_str(&" ".repeat(pad));
    }
    writeln!(w, "{line}")
}
