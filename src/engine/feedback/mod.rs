//! The loop back to whoever asked for a lab: request status documents ([`documents`]) and
//! webhooks ([`notify`]), kept by `watch` on every look at vCenter.

pub mod documents;
pub mod notify;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use jiff::Timestamp;

use crate::model::{Desired, LabName, LabOrigin, Observed, Webhook};
use crate::plan::lifecycle::{LabView, lab_views};
use documents::{Documents, LabStatusEntry};
use notify::{Change, Notifier, RetryPlan, Seen, Told};

/// What the requesters were last told, and how to tell them more.
pub struct Feedback {
    base: PathBuf,
    retries: RetryPlan,
    /// The webhooks the notifier was started for (it is started again when they change).
    hooks: Option<Vec<Webhook>>,
    notifier: Option<Notifier>,
    /// Each lab at the last look (seeded from the documents on the first).
    seen: Option<Told>,
    /// The last error writing documents, said once.
    doc_error: Option<String>,
}

impl Feedback {
    /// For the labs file in folder `base`.
    pub fn new(base: &Path, retries: RetryPlan) -> Self {
        Feedback {
            base: base.to_path_buf(),
            retries,
            hooks: None,
            notifier: None,
            seen: None,
            doc_error: None,
        }
    }

    /// One look at vCenter: the documents brought up to date, the changes since the last look
    /// sent to the webhooks; returns the views and the changes (for events and metrics).
    /// `files`: the included files the config was read from, with the SHA-256 of their bytes.
    pub fn look(
        &mut self,
        desired: &Desired,
        files: &BTreeMap<LabOrigin, String>,
        observed: &Observed,
        now: Timestamp,
    ) -> (Vec<LabView>, Vec<Change>) {
        let views = lab_views(desired, observed, now);
        let changes = self.tell(&desired.feedback, files, &views, now);
        (views, changes)
    }

    /// The documents brought up to `views`, the changes since the last look queued for the
    /// webhooks of `settings`; returns the changes.
    fn tell(
        &mut self,
        settings: &crate::model::Feedback,
        files: &BTreeMap<LabOrigin, String>,
        views: &[LabView],
        now: Timestamp,
    ) -> Vec<Change> {
        let docs = Documents::new(&self.base, settings.status_dir.as_deref());
        let first = self.seen.is_none();
        let seen = self.seen.get_or_insert_with(|| seed(&docs));
        let changes = notify::changes(seen, views, first);
        *seen = views
            .iter()
            .map(|v| {
                (
                    v.lab.clone(),
                    (
                        Seen::of(v),
                        LabStatusEntry::of(v),
                        v.origin
                            .as_ref()
                            .and_then(|o| o.included_path())
                            .map(str::to_string),
                    ),
                )
            })
            .collect();
        match docs.update(files, views, now) {
            Ok(_) => self.doc_error = None,
            Err(e) => {
                let text = e.to_string();
                if self.doc_error.as_deref() != Some(text.as_str()) {
                    tracing::warn!("cannot write the request status documents: {text}");
                }
                self.doc_error = Some(text);
            }
        }
        if self.hooks.as_deref() != Some(settings.webhooks.as_slice()) {
            self.hooks = Some(settings.webhooks.clone());
            self.notifier = None;
            if !settings.webhooks.is_empty() {
                match Notifier::start(&settings.webhooks, &self.base, self.retries) {
                    Ok(n) => self.notifier = Some(n),
                    Err(e) => tracing::warn!("{e}; webhooks are not sent"),
                }
            }
        }
        if let Some(n) = &self.notifier {
            n.send(&changes, now);
        }
        changes
    }
}

/// What the documents on disk last told the requesters, as the state to compare with.
fn seed(docs: &Documents) -> Told {
    let mut out = BTreeMap::new();
    for doc in docs.read_all() {
        for entry in doc.labs {
            let Ok(lab) = LabName::new(entry.name.clone()) else {
                continue;
            };
            let seen = Seen {
                phase: entry.state,
                had_vms: entry.vms.iter().any(|v| v.power.is_some()),
            };
            out.insert(lab, (seen, entry, Some(doc.request_file.clone())));
        }
    }
    out
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
