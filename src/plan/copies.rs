//! Copies of managed VMs: VMs that carry this owner's `labsync.*` markers but fail the
//! ownership rule's place or identity test (see [`crate::model::Ownership`]). A clone made by
//! hand copies `extraConfig`, so this is what one looks like. They are reported, never touched,
//! and never make a lab look broken.

use super::diagnostic::{Code, Diagnostic, Effect};
use super::index::ObservedIndex;

/// One warning per copy, naming it, where it is and why it is not labsync's.
pub(super) fn copy_warnings(index: &ObservedIndex<'_>) -> Vec<Diagnostic> {
    index
        .copies
        .iter()
        .map(|c| {
            let place =
                c.vm.folder
                    .as_ref()
                    .map_or_else(|| "an unknown folder".to_string(), ToString::to_string);
            Diagnostic::warning(
                Code::Copy,
                format!(
                    "{} ({}, in {place}) carries labsync markers but is not a VM labsync made \
                     for this config: {}; it is left alone",
                    c.vm.name,
                    c.vm.moref.value,
                    c.kind.describe()
                ),
                Effect::None,
            )
            .with_help(
                "a copy made by hand carries the markers of the VM it was cloned from; remove \
                 its labsync.* extraConfig entries (or the copy) to silence this",
            )
        })
        .collect()
}
