//! The "what changed" under a replaced lab: per VM, the lines of its spec document that differ
//! between what was recorded at creation and what the files want now (made with `similar`).

use std::io::{self, Write};

use similar::{ChangeTag, TextDiff};

use crate::plan::SpecChange;
use crate::render::style::{Style, Tone};

/// Writes the changed values of each VM, indented by `indent`.
pub(crate) fn write_spec_changes<W: Write>(
    w: &mut W,
    changes: &[SpecChange],
    indent: &str,
    style: Style,
) -> io::Result<()> {
    if changes.is_empty() {
        return writeln!(
            w,
            "{indent}{}",
            style.paint(
                Tone::Dim,
                "(no recorded value differs: the VMs predate labsync.specdoc, or were made by \
                 a labsync that hashed specs differently)"
            )
        );
    }
    for c in changes {
        match (&c.old, &c.new) {
            (Some(old), Some(new)) => {
                writeln!(w, "{indent}{}:", style.paint(Tone::Strong, &c.vm))?;
                let diff = TextDiff::from_lines(old.as_str(), new.as_str());
                for change in diff.iter_all_changes() {
                    let (sign, tone) = match change.tag() {
                        ChangeTag::Equal => continue,
                        ChangeTag::Delete => ("-", Tone::Destroy),
                        ChangeTag::Insert => ("+", Tone::Create),
                    };
                    let line = change.value().trim_end_matches('\n');
                    writeln!(
                        w,
                        "{indent}  {}",
                        style.paint(tone, format!("{sign} {line}"))
                    )?;
                }
            }
            (None, Some(new)) => {
                writeln!(
                    w,
                    "{indent}{}: {}",
                    style.paint(Tone::Strong, &c.vm),
                    style.paint(Tone::Dim, "new in the template")
                )?;
                for line in new.as_str().lines() {
                    writeln!(
                        w,
                        "{indent}  {}",
                        style.paint(Tone::Create, format!("+ {line}"))
                    )?;
                }
            }
            (Some(_), None) | (None, None) => writeln!(
                w,
                "{indent}{}: {}",
                style.paint(Tone::Strong, &c.vm),
                style.paint(Tone::Dim, "no longer in the template")
            )?,
        }
    }
    Ok(())
}
