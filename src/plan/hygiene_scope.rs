//! Which sources hygiene may touch, and what it leaves alone. Only a source whose chain
//! labsync's own clones grow gets hygiene: one that some running-workflow instant-clone template
//! uses, found powered on and not frozen. Linked and full clones add nothing to a source's
//! chain, and a linked-clone source's snapshot is what its clones are cut from; a powered-off
//! source has no running chain to collapse. A snapshot cycle keeps every snapshot labsync did
//! not make, so the chain collapses only down to the snapshot the source runs on: a warning
//! names them.

use std::fmt;

use super::diagnostic::{Code, Diagnostic, Effect};
use crate::model::{
    Desired, DesiredSource, HygieneMethod, Observed, ObservedSource, PowerState, Workflow,
    is_hygiene_snapshot,
};

/// Why labsync leaves a source's chain alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotEligible {
    /// Only linked or full clone templates use it.
    NoInstantClones,
    /// Its templates expect it frozen (`workflow: frozen`).
    FrozenWorkflow,
    /// It is frozen in vCenter (`runtime.instantCloneFrozen`).
    Frozen,
    /// It is not powered on.
    NotRunning(PowerState),
}

impl fmt::Display for NotEligible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotEligible::NoInstantClones => f.write_str(
                "only linked or full clone templates use it: their clones add no delta disk to \
                 its chain, and a linked clone source's snapshot must stay",
            ),
            NotEligible::FrozenWorkflow => f.write_str(
                "its templates expect it frozen (`workflow: frozen`): instant clones of a frozen \
                 source add nothing to its chain",
            ),
            NotEligible::Frozen => f.write_str(
                "it is frozen: instant clones do not grow its chain, there is nothing to collapse",
            ),
            NotEligible::NotRunning(p) => write!(
                f,
                "it is {}: hygiene is for the chain of a running source",
                match p {
                    PowerState::PoweredOn => "powered on",
                    PowerState::PoweredOff => "powered off",
                    PowerState::Suspended => "suspended",
                }
            ),
        }
    }
}

/// May hygiene (of either method) run on this source? The desired side first (how its templates
/// use it), then what vCenter reports.
pub fn hygiene_eligibility(want: &DesiredSource, seen: &ObservedSource) -> Result<(), NotEligible> {
    if !want.instant_cloned() {
        return Err(NotEligible::NoInstantClones);
    }
    if want.workflow != Workflow::Running {
        return Err(NotEligible::FrozenWorkflow);
    }
    if seen.power != PowerState::PoweredOn {
        return Err(NotEligible::NotRunning(seen.power));
    }
    if seen.frozen {
        return Err(NotEligible::Frozen);
    }
    Ok(())
}

/// The snapshots a snapshot cycle keeps on a source: people's, in tree order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeptSnapshots<'o> {
    pub names: Vec<&'o str>,
    /// The snapshot the source runs on: the chain collapses down to it, not further.
    pub floor: Option<&'o str>,
}

impl fmt::Display for KeptSnapshots<'_> {
    /// `2 snapshot(s) labsync did not make: `a`, `b`; hygiene keeps them, but …`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let listed = self
            .names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ");
        write!(
            f,
            "{} snapshot(s) labsync did not make: {listed}; hygiene keeps them, but collapses \
             its chain ",
            self.names.len()
        )?;
        match self.floor {
            Some(c) => write!(f, "only down to `{c}`, the snapshot it runs on"),
            None => f.write_str("only as far as they allow"),
        }
    }
}

/// What a snapshot cycle on this source would keep, when it has snapshots labsync did not make
/// and hygiene may cycle its snapshots (method `snapshot-cycle`, eligible source).
pub(crate) fn kept_snapshots<'o>(
    want: &DesiredSource,
    seen: &'o ObservedSource,
) -> Option<KeptSnapshots<'o>> {
    if want.hygiene.method != HygieneMethod::SnapshotCycle
        || hygiene_eligibility(want, seen).is_err()
    {
        return None;
    }
    let names: Vec<&str> = seen
        .snapshots
        .iter()
        .map(String::as_str)
        .filter(|n| !is_hygiene_snapshot(n))
        .collect();
    (!names.is_empty()).then_some(KeptSnapshots {
        names,
        floor: seen.current_snapshot.as_deref(),
    })
}

/// A warning for each source a snapshot cycle may clean that has snapshots labsync did not make:
/// they stay, and bound how far its chain collapses.
pub(crate) fn snapshot_warnings(desired: &Desired, observed: &Observed) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (path, want) in &desired.sources {
        let Some(kept) = observed
            .sources
            .get(path)
            .and_then(|seen| kept_snapshots(want, seen))
        else {
            continue;
        };
        out.push(
            Diagnostic::warning(
                Code::SourceSnapshots,
                format!("source {path} has {kept}"),
                Effect::None,
            )
            .with_help(
                "remove the snapshots the source no longer needs, so hygiene can collapse its \
                 whole chain",
            ),
        );
    }
    out
}
