//! The PropertyCollector: filter specs with traversal (through container views and inventory
//! properties), `RetrievePropertiesEx` with real paging, and `WaitForUpdatesEx` diffs.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use super::fault::Fault;
use super::props::{PropError, all_properties};
use super::state::{Retrieval, Sim};
use super::value::{DataObject, Value};
use super::world::is_a;
use super::xml::Node;
use crate::model::MoRef;

/// Paged reads kept at once; the oldest is forgotten beyond this.
const MAX_RETRIEVALS: usize = 256;

/// `PropertyFilterSpec`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FilterSpec {
    pub prop_set: Vec<PropSpec>,
    pub object_set: Vec<ObjSpec>,
    pub report_missing: bool,
}

/// `PropertySpec`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PropSpec {
    pub kind: String,
    pub all: bool,
    pub paths: Vec<String>,
}

/// `ObjectSpec`.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjSpec {
    pub obj: MoRef,
    pub skip: bool,
    pub select: Vec<Selection>,
}

/// A `SelectionSpec`: a traversal, or a reference to a named one.
#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    Traversal(Traversal),
    Named(String),
}

/// `TraversalSpec`.
#[derive(Debug, Clone, PartialEq)]
pub struct Traversal {
    pub name: Option<String>,
    pub kind: String,
    pub path: String,
    pub skip: bool,
    pub select: Vec<Selection>,
}

fn bad(what: &str) -> Fault {
    Fault::InvalidArgument {
        property: what.into(),
    }
}

fn parse_selection(n: &Node) -> Selection {
    let is_traversal = n.xsi_type.as_deref() == Some("TraversalSpec") || n.child("path").is_some();
    if is_traversal {
        Selection::Traversal(Traversal {
            name: n.child_text("name").map(str::to_string),
            kind: n.child_text("type").unwrap_or_default().to_string(),
            path: n.child_text("path").unwrap_or_default().to_string(),
            skip: n.child_bool("skip").unwrap_or(false),
            select: n.all("selectSet").map(parse_selection).collect(),
        })
    } else {
        Selection::Named(n.child_text("name").unwrap_or_default().to_string())
    }
}

impl FilterSpec {
    /// Decodes a `PropertyFilterSpec` element.
    pub fn parse(n: &Node) -> Result<FilterSpec, Fault> {
        let prop_set = n
            .all("propSet")
            .map(|p| {
                Ok(PropSpec {
                    kind: p
                        .child_text("type")
                        .ok_or_else(|| bad("propSet.type"))?
                        .to_string(),
                    all: p.child_bool("all").unwrap_or(false),
                    paths: p
                        .all("pathSet")
                        .map(|x| x.text.trim().to_string())
                        .collect(),
                })
            })
            .collect::<Result<Vec<_>, Fault>>()?;
        let object_set = n
            .all("objectSet")
            .map(|o| {
                Ok(ObjSpec {
                    obj: o.child_moref("obj").ok_or_else(|| bad("objectSet.obj"))?,
                    skip: o.child_bool("skip").unwrap_or(false),
                    select: o.all("selectSet").map(parse_selection).collect(),
                })
            })
            .collect::<Result<Vec<_>, Fault>>()?;
        Ok(FilterSpec {
            prop_set,
            object_set,
            report_missing: n
                .child_bool("reportMissingObjectsInResults")
                .unwrap_or(false),
        })
    }

    /// The spec as a data object (`PropertyFilter.spec`).
    pub fn to_value(&self) -> Value {
        fn sel(s: &Selection) -> Value {
            match s {
                Selection::Named(n) => DataObject::new("SelectionSpec")
                    .with("name", Value::str(n.clone()))
                    .into_value(),
                Selection::Traversal(t) => DataObject::new("TraversalSpec")
                    .opt("name", t.name.clone().map(Value::str))
                    .with("type", Value::str(t.kind.clone()))
                    .with("path", Value::str(t.path.clone()))
                    .with("skip", Value::Bool(t.skip))
                    .with(
                        "selectSet",
                        Value::Array("SelectionSpec", t.select.iter().map(sel).collect()),
                    )
                    .into_value(),
            }
        }
        DataObject::new("PropertyFilterSpec")
            .with(
                "propSet",
                Value::Array(
                    "PropertySpec",
                    self.prop_set
                        .iter()
                        .map(|p| {
                            DataObject::new("PropertySpec")
                                .with("type", Value::str(p.kind.clone()))
                                .with("all", Value::Bool(p.all))
                                .with(
                                    "pathSet",
                                    Value::Array(
                                        "string",
                                        p.paths.iter().map(|x| Value::str(x.clone())).collect(),
                                    ),
                                )
                                .into_value()
                        })
                        .collect(),
                ),
            )
            .with(
                "objectSet",
                Value::Array(
                    "ObjectSpec",
                    self.object_set
                        .iter()
                        .map(|o| {
                            DataObject::new("ObjectSpec")
                                .with("obj", Value::Ref(o.obj.clone()))
                                .with("skip", Value::Bool(o.skip))
                                .with(
                                    "selectSet",
                                    Value::Array(
                                        "SelectionSpec",
                                        o.select.iter().map(sel).collect(),
                                    ),
                                )
                                .into_value()
                        })
                        .collect(),
                ),
            )
            .into_value()
    }
}

fn collect_named<'a>(sels: &'a [Selection], out: &mut HashMap<String, &'a Traversal>) {
    for s in sels {
        if let Selection::Traversal(t) = s {
            if let Some(n) = &t.name {
                out.entry(n.clone()).or_insert(t);
            }
            collect_named(&t.select, out);
        }
    }
}

fn refs_of(v: Value) -> Vec<MoRef> {
    match v {
        Value::Ref(r) => vec![r],
        Value::Array(_, items) => items.into_iter().flat_map(refs_of).collect(),
        _ => Vec::new(),
    }
}

/// One object with the paths to report, in order.
type Wanted = (MoRef, Vec<String>);

/// An object's values by path, and the paths that could not be read.
type ObjectValues = (BTreeMap<String, Value>, Vec<(String, Fault)>);

impl Sim {
    /// Does the object exist (for this session, for session-scoped objects)?
    pub fn exists(&self, session: &str, r: &MoRef) -> bool {
        !matches!(
            self.read(session, r, probe_property(&r.kind)),
            Err(PropError::Gone)
        )
    }

    /// The objects a spec selects and the paths wanted for each. `strict`: a missing start
    /// object is a fault (retrieval) rather than silently skipped (update tracking).
    pub fn select(
        &self,
        session: &str,
        spec: &FilterSpec,
        strict: bool,
    ) -> Result<Vec<Wanted>, Fault> {
        let mut named = HashMap::new();
        for os in &spec.object_set {
            collect_named(&os.select, &mut named);
        }
        let mut order: Vec<MoRef> = Vec::new();
        let mut seen: HashSet<MoRef> = HashSet::new();
        let mut visited: HashSet<(MoRef, usize)> = HashSet::new();
        for os in &spec.object_set {
            if !self.exists(session, &os.obj) {
                if strict && !spec.report_missing {
                    return Err(Fault::ManagedObjectNotFound {
                        obj: os.obj.clone(),
                    });
                }
                continue;
            }
            if !os.skip && seen.insert(os.obj.clone()) {
                order.push(os.obj.clone());
            }
            let mut stack: Vec<(MoRef, &[Selection])> = vec![(os.obj.clone(), &os.select)];
            while let Some((obj, sels)) = stack.pop() {
                for s in sels {
                    let t = match s {
                        Selection::Traversal(t) => t,
                        Selection::Named(n) => match named.get(n) {
                            Some(t) => *t,
                            None => continue,
                        },
                    };
                    if !is_a(&obj.kind, &t.kind) {
                        continue;
                    }
                    if !visited.insert((obj.clone(), std::ptr::from_ref(t) as usize)) {
                        continue;
                    }
                    let targets = match self.read(session, &obj, &t.path) {
                        Ok(Some(v)) => refs_of(v),
                        _ => Vec::new(),
                    };
                    for target in &targets {
                        if !t.skip && seen.insert(target.clone()) {
                            order.push(target.clone());
                        }
                    }
                    for target in targets.into_iter().rev() {
                        stack.push((target, &t.select));
                    }
                }
            }
        }
        let mut out = Vec::new();
        for obj in order {
            let mut paths: Vec<String> = Vec::new();
            let mut matched = false;
            for ps in &spec.prop_set {
                if !is_a(&obj.kind, &ps.kind) {
                    continue;
                }
                matched = true;
                let add: Vec<String> = if ps.all {
                    all_properties(&obj.kind)
                        .into_iter()
                        .map(str::to_string)
                        .collect()
                } else {
                    ps.paths.clone()
                };
                for p in add {
                    if !paths.contains(&p) {
                        paths.push(p);
                    }
                }
            }
            if matched {
                out.push((obj, paths));
            }
        }
        Ok(out)
    }

    /// Reads the wanted paths of one object: (values, missing). `None` if the object is gone.
    fn read_object(&self, session: &str, obj: &MoRef, paths: &[String]) -> Option<ObjectValues> {
        let mut vals = BTreeMap::new();
        let mut missing = Vec::new();
        let mut built = super::props::TopCache::default();
        for p in paths {
            match self.read_cached(session, obj, p, &mut built) {
                Ok(Some(v)) => {
                    vals.insert(p.clone(), v);
                }
                Ok(None) => {}
                Err(PropError::Invalid) => {
                    missing.push((p.clone(), Fault::InvalidProperty { name: p.clone() }))
                }
                Err(PropError::Gone) => return None,
            }
        }
        Some((vals, missing))
    }

    fn object_content(&self, session: &str, obj: &MoRef, paths: &[String]) -> Option<Value> {
        let (mut vals, missing) = self.read_object(session, obj, paths)?;
        // Keep the order the client asked for; the values move, they are not copied.
        let props = paths
            .iter()
            .filter_map(|p| vals.remove(p).map(|v| (p, v)))
            .map(|(p, v)| {
                DataObject::new("DynamicProperty")
                    .with("name", Value::str(p.clone()))
                    .typed("val", v)
                    .into_value()
            })
            .collect();
        Some(
            DataObject::new("ObjectContent")
                .with("obj", Value::Ref(obj.clone()))
                .with("propSet", Value::Array("DynamicProperty", props))
                .with(
                    "missingSet",
                    Value::Array("MissingProperty", missing_set(missing)),
                )
                .into_value(),
        )
    }

    /// `RetrievePropertiesEx`: the first page, with a token when more remain.
    pub fn retrieve(
        &mut self,
        session: &str,
        specs: &[FilterSpec],
        max_objects: Option<usize>,
    ) -> Result<Option<Value>, Fault> {
        let mut wanted: Vec<Wanted> = Vec::new();
        // Where each object sits in `wanted`: a view over 50,000 VMs must not cost n² compares.
        let mut at: std::collections::HashMap<MoRef, usize> = std::collections::HashMap::new();
        for s in specs {
            for (obj, paths) in self.select(session, s, true)? {
                match at.get(&obj).and_then(|i| wanted.get_mut(*i)) {
                    Some((_, ps)) => {
                        for p in paths {
                            if !ps.contains(&p) {
                                ps.push(p);
                            }
                        }
                    }
                    None => {
                        at.insert(obj.clone(), wanted.len());
                        wanted.push((obj, paths));
                    }
                }
            }
        }
        let queue: VecDeque<Wanted> = wanted.into();
        Ok(self.page(session, queue, max_objects))
    }

    /// `ContinueRetrievePropertiesEx`.
    pub fn continue_retrieve(
        &mut self,
        session: &str,
        token: &str,
    ) -> Result<Option<Value>, Fault> {
        let r = match self.retrievals.remove(token) {
            Some(r) if r.session == session => r,
            _ => return Err(bad("token")),
        };
        let max = r.page_size;
        Ok(self.page(session, r.remaining, Some(max)))
    }

    /// `CancelRetrievePropertiesEx`.
    pub fn cancel_retrieve(&mut self, session: &str, token: &str) -> Result<(), Fault> {
        match self.retrievals.get(token) {
            Some(r) if r.session == session => {
                self.retrievals.remove(token);
                Ok(())
            }
            _ => Err(bad("token")),
        }
    }

    fn page(
        &mut self,
        session: &str,
        mut queue: VecDeque<Wanted>,
        max: Option<usize>,
    ) -> Option<Value> {
        let size = max.filter(|m| *m > 0).unwrap_or(usize::MAX);
        let mut objects = Vec::new();
        while objects.len() < size {
            let Some((obj, paths)) = queue.pop_front() else {
                break;
            };
            if let Some(oc) = self.object_content(session, &obj, &paths) {
                objects.push(oc);
            }
        }
        if objects.is_empty() && queue.is_empty() {
            return None;
        }
        let token = if queue.is_empty() {
            None
        } else {
            // Clients may abandon a paged read: keep a bounded number, forgetting the oldest.
            if self.retrievals.len() >= MAX_RETRIEVALS
                && let Some(oldest) = self
                    .retrievals
                    .keys()
                    .min_by_key(|k| super::world::natural(k))
                    .cloned()
            {
                self.retrievals.remove(&oldest);
            }
            let t = self.fresh("token-");
            self.retrievals.insert(
                t.clone(),
                Retrieval {
                    session: session.into(),
                    remaining: queue,
                    page_size: size,
                },
            );
            Some(t)
        };
        Some(
            DataObject::new("RetrieveResult")
                .opt("token", token.map(Value::Str))
                .with("objects", Value::Array("ObjectContent", objects))
                .into_value(),
        )
    }

    /// `RetrieveProperties` (the legacy call): every object, no paging.
    pub fn retrieve_all(
        &mut self,
        session: &str,
        specs: &[FilterSpec],
    ) -> Result<Vec<Value>, Fault> {
        let mut out = Vec::new();
        for s in specs {
            for (obj, paths) in self.select(session, s, true)? {
                if let Some(oc) = self.object_content(session, &obj, &paths) {
                    out.push(oc);
                }
            }
        }
        Ok(out)
    }

    /// One round of `WaitForUpdatesEx`: the changes since `version`, or `None` if there are none
    /// yet. Re-asking with the version before the last answer repeats that answer (a client
    /// retrying after a lost response must not miss updates).
    pub fn updates(
        &mut self,
        collector: &str,
        session: &str,
        version: &str,
        max_object_updates: Option<usize>,
    ) -> Result<Option<Value>, Fault> {
        if !self.has_collector(collector, session) {
            return Err(Fault::ManagedObjectNotFound {
                obj: MoRef::new("PropertyCollector", collector),
            });
        }
        let key = self.collector_key(collector, session);
        let col = self.collectors.entry(key.clone()).or_default().clone();
        if let Some((from, answer, _)) = &col.last
            && from == version
            && !version.is_empty()
        {
            return Ok(Some(answer.clone()));
        }
        // A version this collector never issued is refused. An older one (several threads of one
        // session sharing the default collector, as pyVim's WaitForTask does) gets the changes
        // since the last answer.
        if !version.is_empty() && version.parse::<u64>().map_or(true, |v| v > col.version) {
            return Err(Fault::InvalidCollectorVersion);
        }
        let mut budget = max_object_updates.filter(|m| *m > 0).unwrap_or(usize::MAX);
        let mut truncated = false;
        let mut filter_ids = col.filters.clone();
        filter_ids.sort();
        let mut filter_set = Vec::new();
        for fid in filter_ids {
            let Some(f) = self.filters.get(&fid).cloned() else {
                continue;
            };
            let mut reported = if version.is_empty() {
                BTreeMap::new()
            } else {
                f.reported.clone()
            };
            let mut current: Vec<(MoRef, BTreeMap<String, Value>)> = Vec::new();
            for (obj, paths) in self.select(session, &f.spec, false).unwrap_or_default() {
                if let Some((vals, _)) = self.read_object(session, &obj, &paths) {
                    current.push((obj, vals));
                }
            }
            let mut updates = Vec::new();
            // Objects past the budget keep their old reported state: the next call sends them.
            for (obj, now) in &current {
                let (kind, changes): (&str, Vec<Value>) = match reported.get(obj) {
                    None => (
                        "enter",
                        now.iter().map(|(p, v)| change(p, Some(v))).collect(),
                    ),
                    Some(before) => {
                        let mut ch: Vec<Value> = now
                            .iter()
                            .filter(|(p, v)| before.get(*p) != Some(*v))
                            .map(|(p, v)| change(p, Some(v)))
                            .collect();
                        ch.extend(
                            before
                                .keys()
                                .filter(|p| !now.contains_key(*p))
                                .map(|p| change(p, None)),
                        );
                        ("modify", ch)
                    }
                };
                if kind == "modify" && changes.is_empty() {
                    continue;
                }
                if budget == 0 {
                    truncated = true;
                    break;
                }
                budget -= 1;
                reported.insert(obj.clone(), now.clone());
                updates.push(
                    DataObject::new("ObjectUpdate")
                        .with("kind", Value::Enum("ObjectUpdateKind", kind.into()))
                        .with("obj", Value::Ref(obj.clone()))
                        .with("changeSet", Value::Array("PropertyChange", changes))
                        .into_value(),
                );
            }
            let gone: Vec<MoRef> = reported
                .keys()
                .filter(|o| !current.iter().any(|(c, _)| c == *o))
                .cloned()
                .collect();
            for obj in gone {
                if budget == 0 {
                    truncated = true;
                    break;
                }
                budget -= 1;
                reported.remove(&obj);
                updates.push(
                    DataObject::new("ObjectUpdate")
                        .with("kind", Value::Enum("ObjectUpdateKind", "leave".into()))
                        .with("obj", Value::Ref(obj))
                        .into_value(),
                );
            }
            if let Some(fm) = self.filters.get_mut(&fid) {
                fm.reported = reported;
            }
            if !updates.is_empty() {
                filter_set.push(
                    DataObject::new("PropertyFilterUpdate")
                        .with("filter", Value::moref("PropertyFilter", &fid))
                        .with("objectSet", Value::Array("ObjectUpdate", updates))
                        .into_value(),
                );
            }
        }
        if filter_set.is_empty() {
            return Ok(None);
        }
        let c = self.collectors.entry(key).or_default();
        c.version += 1;
        let answer = DataObject::new("UpdateSet")
            .with("version", Value::str(c.version.to_string()))
            .with(
                "filterSet",
                Value::Array("PropertyFilterUpdate", filter_set),
            )
            .opt("truncated", truncated.then_some(Value::Bool(true)))
            .into_value();
        c.last = Some((version.to_string(), answer.clone(), c.version.to_string()));
        Ok(Some(answer))
    }
}

/// A property every object of this type answers, used to test existence.
fn probe_property(kind: &str) -> &'static str {
    match kind {
        "Task" => "info",
        "ContainerView" => "recursive",
        "PropertyFilter" => "partialUpdates",
        _ => "name",
    }
}

fn change(path: &str, v: Option<&Value>) -> Value {
    let obj = DataObject::new("PropertyChange")
        .with("name", Value::str(path))
        .with("op", Value::Enum("PropertyChangeOp", "assign".into()));
    match v {
        Some(v) => obj.typed("val", v.clone()).into_value(),
        None => obj.into_value(),
    }
}

fn missing_set(missing: Vec<(String, Fault)>) -> Vec<Value> {
    missing
        .into_iter()
        .map(|(p, f)| {
            DataObject::new("MissingProperty")
                .with("path", Value::str(p))
                .with("fault", f.localized())
                .into_value()
        })
        .collect()
}
