//! Which ready units start next. Pure: given what is in flight and what is ready, pick under
//! the global limit, the per-host limit, one operation per object, and "no hygiene on a source
//! while clones of it are in flight" (nor clones during its hygiene). Among the eligible, the
//! unit whose source has the fewest operations in flight goes first, then plan order: the
//! stun-serialized sources all stay busy instead of one working through its queue while
//! another idles.

use std::collections::{HashMap, HashSet};

use super::units::UnitId;
use crate::model::MoRef;

/// What the scheduler needs to know about one unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate<'a> {
    pub id: UnitId,
    /// The object it works on.
    pub object: &'a str,
    pub host: Option<&'a MoRef>,
    /// The source it clones from.
    pub clone_source: Option<&'a MoRef>,
    /// The source it cleans.
    pub hygiene_source: Option<&'a MoRef>,
    /// A warm pool's refill: any request's unit goes first.
    pub background: bool,
}

/// The limits of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub parallelism: usize,
    pub per_host: usize,
}

/// What is in flight right now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Load {
    pub total: usize,
    pub per_host: HashMap<MoRef, usize>,
    pub objects: HashSet<String>,
    /// Clones in flight per source.
    pub clones: HashMap<MoRef, usize>,
    /// Sources under hygiene.
    pub hygiene: HashSet<MoRef>,
}

impl Load {
    /// Counts a started unit.
    pub fn start(&mut self, c: &Candidate<'_>) {
        self.total += 1;
        if let Some(h) = c.host {
            *self.per_host.entry(h.clone()).or_default() += 1;
        }
        self.objects.insert(c.object.to_string());
        if let Some(s) = c.clone_source {
            *self.clones.entry(s.clone()).or_default() += 1;
        }
        if let Some(s) = c.hygiene_source {
            self.hygiene.insert(s.clone());
        }
    }

    /// Forgets a finished unit.
    pub fn finish(&mut self, c: &Candidate<'_>) {
        self.total = self.total.saturating_sub(1);
        if let Some(h) = c.host
            && let Some(n) = self.per_host.get_mut(h)
        {
            *n = n.saturating_sub(1);
        }
        self.objects.remove(c.object);
        if let Some(s) = c.clone_source
            && let Some(n) = self.clones.get_mut(s)
        {
            *n = n.saturating_sub(1);
        }
        if let Some(s) = c.hygiene_source {
            self.hygiene.remove(s);
        }
    }

    fn allows(&self, c: &Candidate<'_>, limits: Limits) -> bool {
        if self.total >= limits.parallelism.max(1) || self.objects.contains(c.object) {
            return false;
        }
        if let Some(h) = c.host
            && self.per_host.get(h).copied().unwrap_or(0) >= limits.per_host.max(1)
        {
            return false;
        }
        if let Some(s) = c.clone_source
            && self.hygiene.contains(s)
        {
            return false;
        }
        if let Some(s) = c.hygiene_source
            && (self.hygiene.contains(s) || self.clones.get(s).copied().unwrap_or(0) > 0)
        {
            return false;
        }
        true
    }

    fn source_load(&self, c: &Candidate<'_>) -> usize {
        c.clone_source
            .and_then(|s| self.clones.get(s).copied())
            .unwrap_or(0)
    }
}

/// Picks the units to start now from `ready` (in plan order), updating `load` as it goes.
pub fn pick(ready: &[Candidate<'_>], load: &mut Load, limits: Limits) -> Vec<UnitId> {
    let mut chosen = Vec::new();
    let mut taken = vec![false; ready.len()];
    while load.total < limits.parallelism.max(1) {
        // Requests before refills, then the least-loaded source first; plan order (the
        // index) breaks ties.
        let best = ready
            .iter()
            .enumerate()
            .filter(|(i, c)| !taken[*i] && load.allows(c, limits))
            .min_by_key(|(i, c)| (c.background, load.source_load(c), *i));
        let Some((i, c)) = best else {
            break;
        };
        taken[i] = true;
        load.start(c);
        chosen.push(c.id);
    }
    chosen
}

#[cfg(test)]
#[path = "schedule_tests.rs"]
mod tests;
