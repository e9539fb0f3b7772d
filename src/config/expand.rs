//! Expansion of the validated config into [`Desired`]: pools into labs, labs into VMs named
//! `<lab>-<vm>`, rendered guestinfo, deterministic BIOS UUIDs and the spec hash.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::check;
use super::validate::{Resolved, ResolvedLab, ResolvedTemplate};
use crate::model::{
    CloneMode, Desired, DesiredLab, DesiredPool, DesiredSource, DesiredVm, FailurePolicy, LabName,
    LabOrigin, Lifetime, OwnerId, PartialPolicy, Placement, PoweredOffPolicy, SpecDoc, SpecHash,
    TemplateName, TemplateVm, VmName, spec_hash_of,
};

/// Why expansion failed: only for names the validator let through, which it should not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expanded name `{name}` is not valid: {reason}")]
pub struct ExpandError {
    pub name: String,
    pub reason: String,
}

/// Expands every lab (and every lab of every pool) into its VMs.
pub fn expand(r: &Resolved) -> Result<Desired, ExpandError> {
    let mut labs = BTreeMap::new();
    for lab in &r.labs {
        let Some(template) = r.templates.get(&lab.template) else {
            continue;
        };
        let indexes: Vec<Option<u32>> = match lab.count {
            Some(n) => (1..=n).map(Some).collect(),
            None => vec![None],
        };
        for index in indexes {
            let d = expand_lab(r, lab, template, index)?;
            labs.insert(d.name.clone(), d);
        }
    }
    let mut sources: BTreeMap<_, DesiredSource> = BTreeMap::new();
    for t in r.templates.values() {
        for vm in &t.vms {
            let s = sources
                .entry(vm.source.clone())
                .or_insert_with(|| DesiredSource {
                    path: vm.source.clone(),
                    workflow: t.workflow,
                    hygiene: t.hygiene.clone(),
                    used_by: Vec::new(),
                    clone_modes: Default::default(),
                });
            s.clone_modes.insert(t.clone);
            if !s.used_by.contains(&t.name) {
                s.used_by.push(t.name.clone());
                s.used_by.sort();
            }
        }
    }
    Ok(Desired {
        expiring_warning: r.expiring_warning,
        feedback: r.feedback.clone(),
        owner: r.owner.clone(),
        labs_folder: r.labs_folder.clone(),
        labs,
        sources,
        limits: r.limits.clone(),
        allow_empty: r.allow_empty,
        // The loader adds the included files that hold no labs and the include patterns.
        // A template's pool origin counts as read whether or not it keeps spares: a spare of a
        // template whose pool shrank or went is reaped at once, not after the removal grace.
        origins: std::iter::once(LabOrigin::main())
            .chain(r.labs.iter().map(|l| l.origin.clone()))
            .chain(r.templates.keys().map(LabOrigin::pool))
            .collect(),
        pools: pools(r),
        templates: r
            .templates
            .values()
            .map(|t| {
                (
                    t.name.clone(),
                    crate::model::TemplateInfo {
                        vms: t.vms.iter().map(|v| v.role.to_string()).collect(),
                        clone: t.clone,
                        max_labs: t.max_labs,
                        pool_ready: t.pool.as_ref().map(|p| p.ready),
                    },
                )
            })
            .collect(),
        includes: Vec::new(),
    })
}

fn bad(name: &str, e: impl std::fmt::Display) -> ExpandError {
    ExpandError {
        name: name.to_string(),
        reason: e.to_string(),
    }
}

fn expand_lab(
    r: &Resolved,
    lab: &ResolvedLab,
    t: &ResolvedTemplate,
    index: Option<u32>,
) -> Result<DesiredLab, ExpandError> {
    let index_text = index.map(|i| i.to_string()).unwrap_or_default();
    let name_text = check::render(&lab.name, &[("index", &index_text)]);
    let name = LabName::new(name_text.clone()).map_err(|e| bad(&name_text, e))?;
    let owner_text = lab
        .requested_by
        .clone()
        .unwrap_or_else(|| r.owner.to_string());
    let lifetime = match (lab.lifetime, r.defaults.ttl) {
        (Lifetime::Forever, Some(ttl)) => Lifetime::Ttl(ttl),
        (l, _) => l,
    };
    let shape = Shape {
        template: &t.name,
        clone_mode: t.clone,
        placement: &r.defaults.placement,
        vms: &t.vms,
    };
    let mut d = build_lab(
        &r.owner,
        &shape,
        name,
        &index_text,
        &owner_text,
        &lab.guestinfo,
    )?;
    d.template_max_labs = t.max_labs;
    d.lifetime = lifetime;
    d.requested_by = lab.requested_by.clone();
    d.labels = lab.labels.clone();
    d.on_failure = r.defaults.on_failure;
    d.on_partial = r.defaults.on_partial;
    d.on_powered_off = r.defaults.on_powered_off;
    d.origin = lab.origin.clone();
    Ok(d)
}

/// What shapes a lab's VMs, whatever its name.
struct Shape<'a> {
    template: &'a TemplateName,
    clone_mode: CloneMode,
    placement: &'a Placement,
    vms: &'a [TemplateVm],
}

/// A lab named `name` of a template: its VMs with their guestinfo rendered, its spec hash and
/// the UUIDs derived from it. Lifetime, labels and policies are the defaults; callers set them.
fn build_lab(
    owner: &OwnerId,
    shape: &Shape<'_>,
    name: LabName,
    index_text: &str,
    owner_text: &str,
    lab_guestinfo: &BTreeMap<String, String>,
) -> Result<DesiredLab, ExpandError> {
    let mut vms = Vec::with_capacity(shape.vms.len());
    for vm in shape.vms {
        let vm_name =
            VmName::for_lab(&name, &vm.role).map_err(|e| bad(&format!("{name}-{}", vm.role), e))?;
        let values = [
            ("lab", name.as_str()),
            ("vm", vm.role.as_str()),
            ("index", index_text),
            ("owner", owner_text),
        ];
        // The lab's own values over the template's.
        let guestinfo = vm
            .guestinfo
            .iter()
            .chain(lab_guestinfo)
            .map(|(k, v)| (k.clone(), check::render(v, &values)))
            .collect();
        vms.push(DesiredVm {
            after_ready: vm.after_ready.clone(),
            ready: vm.ready.clone(),
            role: vm.role.clone(),
            name: vm_name,
            source: vm.source.clone(),
            depends_on: vm.depends_on.clone(),
            guestinfo,
            bios_uuid: Uuid::nil(),
        });
    }
    let placement = shape.placement.clone();
    let spec_hash = spec_hash(shape.clone_mode, &placement, &vms);
    for vm in &mut vms {
        vm.bios_uuid = bios_uuid(owner, &name, &vm.role, &spec_hash);
    }
    Ok(DesiredLab {
        template_max_labs: None,
        name,
        template: shape.template.clone(),
        clone_mode: shape.clone_mode,
        vms,
        lifetime: Lifetime::Forever,
        spec_hash,
        requested_by: None,
        labels: BTreeMap::new(),
        placement,
        on_failure: FailurePolicy::default(),
        on_partial: PartialPolicy::default(),
        on_powered_off: PoweredOffPolicy::default(),
        origin: LabOrigin::main(),
    })
}

/// A spare lab of `pool` named `name`: the template's VMs with the guestinfo a spare can know
/// (its own name, the installation as owner, no index); the requester's values are written at
/// claim time. Spares never expire: they are reaped by the pool.
pub fn spare_lab(
    owner: &OwnerId,
    pool: &DesiredPool,
    name: LabName,
) -> Result<DesiredLab, ExpandError> {
    let shape = Shape {
        template: &pool.template,
        clone_mode: pool.clone_mode,
        placement: &pool.placement,
        vms: &pool.vms,
    };
    let mut d = build_lab(owner, &shape, name, "", owner.as_str(), &BTreeMap::new())?;
    d.on_failure = pool.on_failure;
    d.on_partial = pool.on_partial;
    d.on_powered_off = pool.on_powered_off;
    d.origin = LabOrigin::pool(&pool.template);
    Ok(d)
}

/// The pools of the templates that have one.
fn pools(r: &Resolved) -> BTreeMap<TemplateName, DesiredPool> {
    r.templates
        .values()
        .filter_map(|t| {
            let p = t.pool.as_ref()?;
            Some((
                t.name.clone(),
                DesiredPool {
                    template: t.name.clone(),
                    ready: p.ready,
                    schedule: p.schedule.clone(),
                    timezone: p.timezone.clone(),
                    recheck: p.recheck,
                    clone_mode: t.clone,
                    placement: r.defaults.placement.clone(),
                    on_failure: r.defaults.on_failure,
                    on_partial: r.defaults.on_partial,
                    on_powered_off: r.defaults.on_powered_off,
                    vms: t.vms.clone(),
                },
            ))
        })
        .collect()
}

/// The lab's spec hash, computed from its VMs' spec documents ([`SpecDoc`]): everything that
/// shapes the VMs and nothing else (not the lifetime, labels or who asked: changing those must
/// not rebuild a lab). Built from typed values (not the file's text), so formatting and key
/// order cannot change it; and the documents written into each VM are the same ones, so a
/// replace can always show what changed.
pub fn spec_hash(clone_mode: CloneMode, placement: &Placement, vms: &[DesiredVm]) -> SpecHash {
    let docs: Vec<SpecDoc> = vms
        .iter()
        .map(|vm| SpecDoc::for_vm(clone_mode, placement, vm))
        .collect();
    spec_hash_of(&docs)
}

/// Deterministic BIOS UUID (the rule lives with the ownership rule that checks it).
pub use crate::model::bios_uuid;

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use crate::config::check_text;
    use crate::model::{CloneMode, Desired, Lifetime};

    const BASE: &str = r#"apiVersion: labsync/v1
vcenter:
  url: sim://inventory.yaml
  datacenter: DC1
  labs_folder: /DC1/vm/labs
  owner: demo
defaults:
  ttl: 8h
templates:
  k8s:
    vms:
      - name: worker
        source: /DC1/vm/templates/k8s-worker
        depends_on: [cp]
      - name: db
        source: /DC1/vm/templates/k8s-db
        guestinfo:
          guestinfo.hostname: "{{lab}}-{{vm}}"
          guestinfo.seat: "{{index}}"
          guestinfo.user: "{{owner}}"
      - name: cp
        source: /DC1/vm/templates/k8s-cp
        depends_on: [db]
labs:
  - name: alice
    template: k8s
    owner: alice@example.com
  - name: class-{{index}}
    template: k8s
    count: 3
    ttl: 2h
  - name: fixed
    template: k8s
    expires_at: 2027-01-01T00:00:00Z
"#;

    fn now() -> Timestamp {
        "2026-11-26T12:00:00Z".parse().unwrap()
    }

    fn desired(text: &str) -> Desired {
        let loaded = check_text("labs.yaml", text, now());
        let msgs: Vec<String> = loaded
            .diagnostics
            .iter()
            .map(|d| d.message.clone())
            .collect();
        loaded
            .desired
            .unwrap_or_else(|| panic!("invalid: {msgs:?}"))
    }

    fn lab<'a>(d: &'a Desired, name: &str) -> &'a crate::model::DesiredLab {
        d.labs
            .values()
            .find(|l| l.name.as_str() == name)
            .unwrap_or_else(|| panic!("no lab {name}"))
    }

    #[test]
    fn pools_expand_into_numbered_labs_and_vms_are_named_lab_dash_role() {
        let d = desired(BASE);
        let names: Vec<&str> = d.labs.keys().map(|n| n.as_str()).collect();
        assert_eq!(names, ["alice", "class-1", "class-2", "class-3", "fixed"]);
        let vms: Vec<&str> = lab(&d, "class-2")
            .vms
            .iter()
            .map(|v| v.name.as_str())
            .collect();
        assert_eq!(vms, ["class-2-db", "class-2-cp", "class-2-worker"]);
    }

    #[test]
    fn vms_are_in_depends_on_order() {
        let d = desired(BASE);
        let roles: Vec<&str> = lab(&d, "alice")
            .vms
            .iter()
            .map(|v| v.role.as_str())
            .collect();
        assert_eq!(roles, ["db", "cp", "worker"]);
    }

    #[test]
    fn a_labs_own_guestinfo_goes_to_every_vm_over_the_templates_and_into_the_spec() {
        let with = BASE.replace(
            "  - name: alice\n    template: k8s\n    owner: alice@example.com\n",
            "  - name: alice\n    template: k8s\n    owner: alice@example.com\n    guestinfo:\n      guestinfo.student: \"Alice ({{owner}})\"\n      guestinfo.hostname: mine\n",
        );
        assert_ne!(with, BASE);
        let d = desired(&with);
        let alice = lab(&d, "alice");
        for vm in &alice.vms {
            assert_eq!(
                vm.guestinfo["guestinfo.student"],
                "Alice (alice@example.com)"
            );
        }
        // Over the template's own value.
        assert_eq!(alice.vms[0].guestinfo["guestinfo.hostname"], "mine");
        assert_ne!(alice.spec_hash, lab(&desired(BASE), "alice").spec_hash);
    }

    #[test]
    fn guestinfo_placeholders_are_rendered_per_lab() {
        let d = desired(BASE);
        let cases = [
            ("alice", "alice-db", "", "alice@example.com"),
            ("class-3", "class-3-db", "3", "demo"),
        ];
        for (lab_name, hostname, seat, user) in cases {
            let gi = &lab(&d, lab_name).vms[0].guestinfo;
            assert_eq!(gi["guestinfo.hostname"], hostname, "{lab_name}");
            assert_eq!(gi["guestinfo.seat"], seat, "{lab_name}");
            assert_eq!(gi["guestinfo.user"], user, "{lab_name}");
        }
    }

    #[test]
    fn lifetimes_come_from_the_lab_or_the_default_ttl() {
        let d = desired(BASE);
        let hours = |h: i64| Lifetime::Ttl(jiff::SignedDuration::from_hours(h));
        assert_eq!(lab(&d, "alice").lifetime, hours(8));
        assert_eq!(lab(&d, "class-1").lifetime, hours(2));
        assert_eq!(
            lab(&d, "fixed").lifetime,
            Lifetime::ExpiresAt("2027-01-01T00:00:00Z".parse().unwrap())
        );
    }

    #[test]
    fn bios_uuids_are_stable_and_distinct() {
        let a = desired(BASE);
        let b = desired(BASE);
        let uuids: Vec<_> = a
            .labs
            .values()
            .flat_map(|l| l.vms.iter().map(|v| v.bios_uuid))
            .collect();
        let again: Vec<_> = b
            .labs
            .values()
            .flat_map(|l| l.vms.iter().map(|v| v.bios_uuid))
            .collect();
        assert_eq!(uuids, again);
        let unique: std::collections::BTreeSet<_> = uuids.iter().collect();
        assert_eq!(unique.len(), uuids.len());
        assert!(uuids.iter().all(|u| u.get_version_num() == 5));
    }

    #[test]
    fn the_spec_hash_ignores_formatting_key_order_and_lifetime() {
        let reordered = BASE
            .replace(
                "        guestinfo:\n          guestinfo.hostname: \"{{lab}}-{{vm}}\"\n          guestinfo.seat: \"{{index}}\"\n",
                "        guestinfo: {guestinfo.seat: '{{index}}',   guestinfo.hostname: '{{lab}}-{{vm}}'}\n",
            )
            .replace("          guestinfo.user: \"{{owner}}\"\n", "")
            .replace("guestinfo.seat: '{{index}}',", "guestinfo.seat: '{{index}}', guestinfo.user: \"{{owner}}\",")
            .replace("    ttl: 2h\n", "    ttl: 90m\n")
            .replace("labs:\n", "# comment\nlabs:\n");
        assert_ne!(reordered, BASE);
        let a = desired(BASE);
        let b = desired(&reordered);
        for (name, l) in &a.labs {
            assert_eq!(l.spec_hash, b.labs[name].spec_hash, "{name}");
        }
    }

    #[test]
    fn the_spec_hash_changes_with_a_guestinfo_value_and_with_it_the_uuids() {
        let changed = BASE.replace("\"{{lab}}-{{vm}}\"", "\"{{lab}}-{{vm}}.lab.local\"");
        let a = desired(BASE);
        let b = desired(&changed);
        let (la, lb) = (lab(&a, "alice"), lab(&b, "alice"));
        assert_ne!(la.spec_hash, lb.spec_hash);
        assert_ne!(la.vms[0].bios_uuid, lb.vms[0].bios_uuid);
    }

    #[test]
    fn the_spec_hash_changes_with_the_source_and_the_clone_mode() {
        let a = desired(BASE);
        let source = desired(&BASE.replace("k8s-worker", "k8s-worker-v2"));
        let mode = desired(&BASE.replace(
            "templates:\n  k8s:\n",
            "templates:\n  k8s:\n    clone: linked\n",
        ));
        assert_ne!(lab(&a, "alice").spec_hash, lab(&source, "alice").spec_hash);
        assert_ne!(lab(&a, "alice").spec_hash, lab(&mode, "alice").spec_hash);
    }

    #[test]
    fn the_spec_hash_is_the_hash_of_the_documents_written_into_the_vms() {
        let d = desired(BASE);
        for l in d.labs.values() {
            assert_eq!(
                l.spec_hash,
                crate::model::spec_hash_of(&l.spec_docs()),
                "{}",
                l.name
            );
        }
        let db = lab(&d, "class-2").spec_doc(&lab(&d, "class-2").vms[0]);
        assert!(db.as_str().contains("guestinfo.seat: 2\n"), "{db}");
    }

    #[test]
    fn sources_list_the_templates_that_use_them() {
        let d = desired(BASE);
        assert_eq!(d.sources.len(), 3);
        let db = d
            .sources
            .values()
            .find(|s| s.path.leaf() == "k8s-db")
            .unwrap();
        assert_eq!(db.used_by.len(), 1);
        assert_eq!(db.hygiene.max_chain, crate::model::DEFAULT_MAX_CHAIN);
    }

    #[test]
    fn sources_know_how_their_templates_clone_them() {
        let d = desired(BASE);
        assert!(d.sources.values().all(|s| s.instant_cloned()));
        // A second template clones k8s-db linked: it stays instant-cloned by `k8s`.
        let both = BASE.replace(
            "labs:\n",
            "  win:\n    clone: linked\n    vms:\n      - name: db\n        source: /DC1/vm/templates/k8s-db\n      - name: client\n        source: /DC1/vm/templates/win-client\nlabs:\n",
        );
        let d = desired(&both);
        let by_leaf = |leaf: &str| {
            d.sources
                .values()
                .find(|s| s.path.leaf() == leaf)
                .unwrap_or_else(|| panic!("{leaf}"))
        };
        let db = by_leaf("k8s-db");
        assert_eq!(
            db.clone_modes,
            [CloneMode::Instant, CloneMode::Linked].into()
        );
        assert!(db.instant_cloned());
        let client = by_leaf("win-client");
        assert_eq!(client.clone_modes, [CloneMode::Linked].into());
        assert!(!client.instant_cloned());
    }
}
