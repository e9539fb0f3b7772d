//! Removals need a stable picture: an `include` pattern that fed labs (some managed lab records
//! a file it matches as its origin) and matches no file now means the picture is not stable (a
//! folder moved away for a deploy, a `git checkout`, a sync tool): no lab is removed this run,
//! and the plan says so with an error.

use std::collections::BTreeSet;

use super::diagnostic::{Code, Diagnostic, Effect};
use super::guards::lab_list;
use super::index::ObservedIndex;
use crate::model::{Desired, LabName};

/// The include patterns that matched files before (labs came from them) and match none now,
/// each with the labs that came from it.
pub(crate) fn vanished_includes(
    desired: &Desired,
    index: &ObservedIndex<'_>,
) -> Vec<(String, BTreeSet<LabName>)> {
    let mut out = Vec::new();
    for include in desired.includes.iter().filter(|i| i.matched == 0) {
        let Ok(pattern) = glob::Pattern::new(&include.pattern) else {
            continue;
        };
        let options = glob::MatchOptions {
            require_literal_separator: true,
            ..glob::MatchOptions::new()
        };
        let fed: BTreeSet<LabName> = index
            .by_lab
            .iter()
            .filter(|(_, vms)| {
                vms.iter().any(|m| {
                    m.markers
                        .origin
                        .as_ref()
                        .and_then(|o| o.included_path())
                        .is_some_and(|p| pattern.matches_with(p, options))
                })
            })
            .map(|(lab, _)| lab.clone())
            .collect();
        if !fed.is_empty() {
            out.push((include.pattern.clone(), fed));
        }
    }
    out
}

/// The error that blocks removals, naming the patterns and the labs that are kept.
pub(crate) fn blocked_removals(
    vanished: &[(String, BTreeSet<LabName>)],
    held: BTreeSet<LabName>,
) -> Diagnostic {
    let patterns: Vec<String> = vanished.iter().map(|(p, _)| format!("`{p}`")).collect();
    let fed: BTreeSet<LabName> = vanished
        .iter()
        .flat_map(|(_, l)| l.iter().cloned())
        .collect();
    Diagnostic::error(
        Code::IncludeVanished,
        format!(
            "include pattern {} matched the files of {} lab(s) before and matches no file now; \
             no lab is removed this run ({} kept: {})",
            patterns.join(", "),
            fed.len(),
            held.len(),
            lab_list(&held),
        ),
        Effect::SkipsLabs {
            labs: held.into_iter().collect(),
        },
    )
    .with_help(
        "if the request files moved away for a moment, nothing is lost: the labs stay; to remove \
         them on purpose, delete their files while the pattern still matches another file, or \
         `labsync destroy --lab NAME`",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{IncludeMatch, LabOrigin};
    use crate::plan::testkit::{World, lab, made, now};

    fn from_file(name: &str, file: &str) -> crate::model::DesiredLab {
        let mut l = lab(name);
        l.origin = LabOrigin::included(file);
        l
    }

    #[test]
    fn a_pattern_that_fed_labs_and_matches_nothing_now_is_reported_with_its_labs() {
        let mut w = World::new()
            .has(made(&from_file("alice", "labs.d/a.yaml"), now()))
            .has(made(&from_file("bob", "other/b.yaml"), now()))
            .has(made(&lab("carol"), now()));
        w.desired.includes = vec![
            IncludeMatch {
                pattern: "labs.d/*.yaml".into(),
                matched: 0,
            },
            IncludeMatch {
                pattern: "other/*.yaml".into(),
                matched: 1,
            },
        ];
        let index = ObservedIndex::new(&w.observed, &w.desired.ownership());
        let v = vanished_includes(&w.desired, &index);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].0, "labs.d/*.yaml");
        let labs: Vec<&str> = v[0].1.iter().map(LabName::as_str).collect();
        assert_eq!(labs, ["alice"]);
    }

    #[test]
    fn a_pattern_that_never_fed_a_lab_is_no_reason_to_block() {
        let mut w = World::new().has(made(&lab("carol"), now()));
        w.desired.includes = vec![IncludeMatch {
            pattern: "labs.d/*.yaml".into(),
            matched: 0,
        }];
        let index = ObservedIndex::new(&w.observed, &w.desired.ownership());
        assert!(vanished_includes(&w.desired, &index).is_empty());
    }
}
