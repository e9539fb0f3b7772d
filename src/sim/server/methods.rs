//! Method dispatch: decodes each vim25 call's parameters from the request tree, runs it on the
//! [`Sim`], and says what to answer. Unknown methods get `MethodNotFound`.

use jiff::Timestamp;

use super::soap::Returns;
use crate::model::MoRef;
use crate::sim::collector::FilterSpec;
use crate::sim::fault::Fault;
use crate::sim::ops::{Call, CloneSpec, InstantCloneSpec};
use crate::sim::props::PropError;
use crate::sim::state::{Session, Sim};
use crate::sim::taskinfo::{field_def, service_content, session_id, user_session};
use crate::sim::tasks::ConfigChange;
use crate::sim::value::Value;
use crate::sim::world::is_a;
use crate::sim::xml::Node;

/// Methods callable without a session.
pub const PUBLIC_METHODS: &[&str] = &["RetrieveServiceContent", "Login"];

/// What the HTTP layer must do after a call.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Reply(Returns),
    /// A new session: answer and set this cookie.
    LoggedIn(Returns, String),
    /// Wait for property collector updates (long poll), then answer.
    Wait {
        collector: String,
        version: String,
        max_wait_secs: Option<u64>,
        max_object_updates: Option<usize>,
        /// `WaitForUpdates` (always answers eventually) rather than `WaitForUpdatesEx`.
        legacy: bool,
    },
}

/// One decoded call.
pub struct Request<'a> {
    pub method: &'a str,
    pub this: MoRef,
    pub node: &'a Node,
    pub session: Option<Session>,
    pub now: Timestamp,
}

fn one(v: Value) -> Result<Outcome, Fault> {
    Ok(Outcome::Reply(Returns::One {
        value: v,
        typed: false,
    }))
}

fn nothing() -> Result<Outcome, Fault> {
    Ok(Outcome::Reply(Returns::Nothing))
}

fn arg<'a>(n: &'a Node, name: &str) -> Result<&'a str, Fault> {
    n.child_text(name).ok_or_else(|| Fault::InvalidArgument {
        property: name.into(),
    })
}

fn moref_arg(n: &Node, name: &str) -> Result<MoRef, Fault> {
    n.child_moref(name).ok_or_else(|| Fault::InvalidArgument {
        property: name.into(),
    })
}

fn option_values<'a>(nodes: impl Iterator<Item = &'a Node>) -> Vec<(String, String)> {
    nodes
        .filter_map(|o| {
            let k = o.child_text("key")?.to_string();
            let v = o.child("value").map(|v| v.text.clone()).unwrap_or_default();
            Some((k, v))
        })
        .collect()
}

/// Decodes the `spec` of an instant clone (or of its check).
fn instant_spec(n: &Node) -> Result<InstantCloneSpec, Fault> {
    let spec = n.child("spec").ok_or_else(|| Fault::InvalidArgument {
        property: "spec".into(),
    })?;
    let loc = spec.child("location");
    Ok(InstantCloneSpec {
        name: arg(spec, "name")?.to_string(),
        folder: loc.and_then(|l| l.child_moref("folder")).map(|r| r.value),
        pool: loc.and_then(|l| l.child_moref("pool")).map(|r| r.value),
        datastore: loc
            .and_then(|l| l.child_moref("datastore"))
            .map(|r| r.value),
        config: option_values(spec.all("config")),
        bios_uuid: spec.child_text("biosUuid").map(str::to_string),
    })
}

/// Decodes a `ReconfigVM_Task`'s `spec` (`VirtualMachineConfigSpec`): the fields the
/// simulator models; `deviceChange` is noted (and refused).
fn config_change(n: &Node) -> Result<ConfigChange, Fault> {
    let spec = n.child("spec").ok_or_else(|| Fault::InvalidArgument {
        property: "spec".into(),
    })?;
    let int = |name: &str| -> Result<Option<i32>, Fault> {
        spec.child_text(name)
            .map(|t| {
                t.parse().map_err(|_| Fault::InvalidArgument {
                    property: format!("spec.{name}"),
                })
            })
            .transpose()
    };
    let memory_mb = spec
        .child_text("memoryMB")
        .map(|t| {
            t.parse::<i64>()
                .ok()
                .and_then(|m| i32::try_from(m).ok())
                .ok_or_else(|| Fault::InvalidArgument {
                    property: "spec.memoryMB".into(),
                })
        })
        .transpose()?;
    Ok(ConfigChange {
        change_version: spec.child_text("changeVersion").map(str::to_string),
        name: spec.child("name").map(|c| c.text.clone()),
        annotation: spec.child("annotation").map(|c| c.text.clone()),
        num_cpus: int("numCPUs")?,
        memory_mb,
        extra_config: option_values(spec.all("extraConfig")),
        device_change: spec.child("deviceChange").is_some(),
    })
}

/// One call as the handlers see it.
#[derive(Clone, Copy)]
struct Ctx<'a> {
    method: &'a str,
    this: &'a MoRef,
    n: &'a Node,
    /// The caller's session key (empty before `Login`).
    sess: &'a str,
    call: Call<'a>,
}

impl Ctx<'_> {
    /// What vCenter answers a method the receiver's type does not have.
    fn method_not_found(&self) -> Fault {
        Fault::MethodNotFound {
            receiver: self.this.clone(),
            method: self.method.into(),
        }
    }
}

/// Runs one call. The caller has already checked the session for non-public methods.
///
/// A few methods are answered by any object; the rest by the type of `_this`, one handler per
/// managed object type, each refusing the methods its type does not have with
/// `MethodNotFound`.
pub fn dispatch(sim: &mut Sim, req: &Request) -> Result<Outcome, Fault> {
    let session_key = req
        .session
        .as_ref()
        .map(|s| s.key.clone())
        .unwrap_or_default();
    let user = req
        .session
        .as_ref()
        .map(|s| s.user.clone())
        .unwrap_or_default();
    let cx = Ctx {
        method: req.method,
        this: &req.this,
        n: req.node,
        sess: &session_key,
        call: Call {
            user: &user,
            now: req.now,
        },
    };
    if let Some(outcome) = any_object(sim, cx) {
        return outcome;
    }
    match req.this.kind.as_str() {
        "ServiceInstance" => service_instance(sim, cx),
        "SessionManager" => session_manager(sim, cx),
        "ViewManager" => view_manager(sim, cx),
        "ContainerView" => container_view(sim, cx),
        "PropertyCollector" => property_collector(sim, cx),
        "PropertyFilter" => property_filter(sim, cx),
        "VirtualMachine" => virtual_machine(sim, cx),
        "VirtualMachineProvisioningChecker" => provisioning_checker(sim, cx),
        "VirtualMachineSnapshot" => snapshot(sim, cx),
        "Folder" => folder(sim, cx),
        "CustomFieldsManager" => custom_fields(sim, cx),
        "SearchIndex" => search_index(sim, cx),
        "Task" => task(sim, cx),
        _ => Err(cx.method_not_found()),
    }
}

/// The `ServiceInstance`: its content and the server's clock.
fn service_instance(sim: &mut Sim, cx: Ctx<'_>) -> Result<Outcome, Fault> {
    match cx.method {
        "RetrieveServiceContent" => one(service_content(&sim.world)),
        "CurrentTime" | "GetCurrentTime" => one(Value::Time(cx.call.now)),
        _ => Err(cx.method_not_found()),
    }
}

/// The `SessionManager`: log in and out, other sessions.
fn session_manager(sim: &mut Sim, cx: Ctx<'_>) -> Result<Outcome, Fault> {
    let Ctx { n, sess, .. } = cx;
    match cx.method {
        "Login" => {
            let key = uuid::Uuid::new_v4().to_string();
            let s = sim.login(
                arg(n, "userName")?,
                n.child_text("password").unwrap_or(""),
                key.clone(),
                cx.call.now,
            )?;
            Ok(Outcome::LoggedIn(
                Returns::One {
                    value: user_session(&s),
                    typed: false,
                },
                key,
            ))
        }
        "Logout" => {
            sim.logout(sess);
            nothing()
        }
        "TerminateSession" => {
            let ids: Vec<String> = n
                .all("sessionId")
                .map(|s| s.text.trim().to_string())
                .collect();
            sim.terminate_sessions(sess, &ids)?;
            nothing()
        }
        "SessionIsActive" => {
            let id = arg(n, "sessionID")?;
            let user = n.child_text("userName").unwrap_or("");
            let active = sim
                .sessions
                .values()
                .any(|s| session_id(&s.key) == id && s.user == user);
            one(Value::Bool(active))
        }
        _ => Err(cx.method_not_found()),
    }
}

/// The `ViewManager`: container views.
fn view_manager(sim: &mut Sim, cx: Ctx<'_>) -> Result<Outcome, Fault> {
    let Ctx { n, sess, .. } = cx;
    match cx.method {
        "CreateContainerView" => {
            let container = moref_arg(n, "container")?;
            let types = n.all("type").map(|t| t.text.trim().to_string()).collect();
            let recursive = n.child_bool("recursive").unwrap_or(false);
            one(Value::Ref(
                sim.create_view(sess, container, types, recursive)?,
            ))
        }
        _ => Err(cx.method_not_found()),
    }
}

/// A `ContainerView`.
fn container_view(sim: &mut Sim, cx: Ctx<'_>) -> Result<Outcome, Fault> {
    let Ctx { this, sess, .. } = cx;
    match cx.method {
        "DestroyView" => match sim.views.get(&this.value) {
            Some(v) if v.session == sess => {
                sim.views.remove(&this.value);
                nothing()
            }
            _ => Err(Fault::ManagedObjectNotFound { obj: this.clone() }),
        },
        _ => Err(cx.method_not_found()),
    }
}

/// A `PropertyCollector`: retrievals, filters and update waits.
fn property_collector(sim: &mut Sim, cx: Ctx<'_>) -> Result<Outcome, Fault> {
    let Ctx { this, n, sess, .. } = cx;
    match cx.method {
        "RetrievePropertiesEx"
        | "RetrieveProperties"
        | "ContinueRetrievePropertiesEx"
        | "CancelRetrievePropertiesEx"
        | "CreateFilter"
        | "DestroyPropertyCollector"
        | "CreatePropertyCollector"
        | "WaitForUpdatesEx"
        | "WaitForUpdates"
        | "CheckForUpdates"
            if !sim.has_collector(&this.value, sess) =>
        {
            Err(Fault::ManagedObjectNotFound { obj: this.clone() })
        }
        "RetrievePropertiesEx" => {
            let specs = n
                .all("specSet")
                .map(FilterSpec::parse)
                .collect::<Result<Vec<_>, _>>()?;
            let max = n
                .child("options")
                .and_then(|o| o.child_text("maxObjects"))
                .and_then(|m| m.parse::<usize>().ok());
            match sim.retrieve(sess, &specs, max)? {
                Some(v) => one(v),
                None => nothing(),
            }
        }
        "ContinueRetrievePropertiesEx" => match sim.continue_retrieve(sess, arg(n, "token")?)? {
            Some(v) => one(v),
            None => nothing(),
        },
        "CancelRetrievePropertiesEx" => {
            sim.cancel_retrieve(sess, arg(n, "token")?)?;
            nothing()
        }
        "RetrieveProperties" => {
            let specs = n
                .all("specSet")
                .map(FilterSpec::parse)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Outcome::Reply(Returns::Many(
                sim.retrieve_all(sess, &specs)?,
            )))
        }
        "CreatePropertyCollector" => one(Value::Ref(sim.create_collector(sess))),
        "DestroyPropertyCollector" => {
            sim.destroy_collector(&this.value, sess)?;
            nothing()
        }
        "CreateFilter" => {
            let spec =
                FilterSpec::parse(n.child("spec").ok_or_else(|| Fault::InvalidArgument {
                    property: "spec".into(),
                })?)?;
            if let Some(os) = spec.object_set.iter().find(|os| !sim.exists(sess, &os.obj)) {
                return Err(Fault::ManagedObjectNotFound {
                    obj: os.obj.clone(),
                });
            }
            let partial = n.child_bool("partialUpdates").unwrap_or(false);
            one(Value::Ref(sim.create_filter(
                &this.value,
                sess,
                spec,
                partial,
            )))
        }
        "WaitForUpdatesEx" | "WaitForUpdates" | "CheckForUpdates" => {
            let version = n.child_text("version").unwrap_or("").to_string();
            let max_wait_secs = match cx.method {
                "WaitForUpdatesEx" => n
                    .child("options")
                    .and_then(|o| o.child_text("maxWaitSeconds"))
                    .and_then(|m| m.parse::<u64>().ok()),
                "CheckForUpdates" => Some(0),
                _ => None,
            };
            let max_object_updates = n
                .child("options")
                .and_then(|o| o.child_text("maxObjectUpdates"))
                .and_then(|m| m.parse::<usize>().ok());
            Ok(Outcome::Wait {
                collector: this.value.clone(),
                version,
                max_wait_secs,
                max_object_updates,
                legacy: cx.method == "WaitForUpdates",
            })
        }
        "CancelWaitForUpdates" => nothing(),
        _ => Err(cx.method_not_found()),
    }
}

/// A `PropertyFilter`.
fn property_filter(sim: &mut Sim, cx: Ctx<'_>) -> Result<Outcome, Fault> {
    let Ctx { this, sess, .. } = cx;
    match cx.method {
        "DestroyPropertyFilter" => {
            sim.destroy_filter(&this.value, sess)?;
            nothing()
        }
        _ => Err(cx.method_not_found()),
    }
}

/// A `VirtualMachine`: clones, power, snapshots of the whole VM, disks, reconfiguration.
fn virtual_machine(sim: &mut Sim, cx: Ctx<'_>) -> Result<Outcome, Fault> {
    let Ctx { this, n, call, .. } = cx;
    match cx.method {
        "InstantClone_Task" => {
            let parsed = instant_spec(n)?;
            one(Value::Ref(sim.world.instant_clone(
                &this.value,
                parsed,
                call,
            )?))
        }
        "CloneVM_Task" => {
            let spec = n.child("spec").ok_or_else(|| Fault::InvalidArgument {
                property: "spec".into(),
            })?;
            let loc = spec.child("location");
            let parsed = CloneSpec {
                folder: moref_arg(n, "folder")?.value,
                name: arg(n, "name")?.to_string(),
                pool: loc.and_then(|l| l.child_moref("pool")).map(|r| r.value),
                datastore: loc
                    .and_then(|l| l.child_moref("datastore"))
                    .map(|r| r.value),
                host: loc.and_then(|l| l.child_moref("host")).map(|r| r.value),
                disk_move_type: loc
                    .and_then(|l| l.child_text("diskMoveType"))
                    .map(str::to_string),
                snapshot: spec.child_moref("snapshot").map(|r| r.value),
                power_on: spec.child_bool("powerOn").unwrap_or(false),
                template: spec.child_bool("template").unwrap_or(false),
                extra_config: spec
                    .child("config")
                    .map(|c| option_values(c.all("extraConfig")))
                    .unwrap_or_default(),
                uuid: spec
                    .child("config")
                    .and_then(|c| c.child_text("uuid"))
                    .map(str::to_string),
                instance_uuid: spec
                    .child("config")
                    .and_then(|c| c.child_text("instanceUuid"))
                    .map(str::to_string),
            };
            one(Value::Ref(sim.world.clone_vm(&this.value, parsed, call)?))
        }
        "CreateSnapshot_Task" => {
            let name = arg(n, "name")?.to_string();
            let desc = n.child_text("description").unwrap_or("").to_string();
            one(Value::Ref(sim.world.create_snapshot(
                &this.value,
                &name,
                &desc,
                call,
            )?))
        }
        "RemoveAllSnapshots_Task" => {
            let consolidate = n.child_bool("consolidate").unwrap_or(true);
            one(Value::Ref(sim.world.remove_all_snapshots(
                &this.value,
                consolidate,
                call,
            )?))
        }
        "PromoteDisks_Task" => {
            let unlink = n
                .child_bool("unlink")
                .ok_or_else(|| Fault::InvalidArgument {
                    property: "unlink".into(),
                })?;
            one(Value::Ref(sim.world.promote_disks(
                &this.value,
                unlink,
                call,
            )?))
        }
        "PowerOnVM_Task" => one(Value::Ref(sim.world.power_on(&this.value, call)?)),
        "PowerOffVM_Task" => one(Value::Ref(sim.world.power_off(&this.value, call)?)),
        "ReconfigVM_Task" => {
            let change = config_change(n)?;
            one(Value::Ref(sim.world.reconfigure(
                &this.value,
                change,
                call,
            )?))
        }
        "RevertToCurrentSnapshot_Task" => {
            let suppress = n.child_bool("suppressPowerOn").unwrap_or(false);
            one(Value::Ref(sim.world.revert_to_current_snapshot(
                &this.value,
                suppress,
                call,
            )?))
        }
        "ResetVM_Task" => one(Value::Ref(sim.world.reset(&this.value, call)?)),
        "ShutdownGuest" => {
            sim.world.shutdown_guest(&this.value, cx.call.now)?;
            nothing()
        }
        _ => Err(cx.method_not_found()),
    }
}

/// The `VirtualMachineProvisioningChecker`.
fn provisioning_checker(sim: &mut Sim, cx: Ctx<'_>) -> Result<Outcome, Fault> {
    let Ctx { n, call, .. } = cx;
    match cx.method {
        "CheckInstantClone_Task" => {
            let vm = moref_arg(n, "vm")?;
            let parsed = instant_spec(n)?;
            one(Value::Ref(
                sim.world.check_instant_clone(&vm.value, parsed, call)?,
            ))
        }
        _ => Err(cx.method_not_found()),
    }
}

/// A `VirtualMachineSnapshot`.
fn snapshot(sim: &mut Sim, cx: Ctx<'_>) -> Result<Outcome, Fault> {
    let Ctx { this, n, call, .. } = cx;
    match cx.method {
        "RemoveSnapshot_Task" => {
            // `removeChildren` is required; `consolidate` defaults to true (vim25 6.0+).
            let remove_children =
                n.child_bool("removeChildren")
                    .ok_or_else(|| Fault::InvalidArgument {
                        property: "removeChildren".into(),
                    })?;
            let consolidate = n.child_bool("consolidate").unwrap_or(true);
            one(Value::Ref(sim.world.remove_snapshot(
                &this.value,
                remove_children,
                consolidate,
                call,
            )?))
        }
        "RevertToSnapshot_Task" => {
            let suppress = n.child_bool("suppressPowerOn").unwrap_or(false);
            one(Value::Ref(sim.world.revert_to_snapshot(
                &this.value,
                suppress,
                call,
            )?))
        }
        _ => Err(cx.method_not_found()),
    }
}

/// A `Folder`.
fn folder(sim: &mut Sim, cx: Ctx<'_>) -> Result<Outcome, Fault> {
    let Ctx { this, n, .. } = cx;
    match cx.method {
        "CreateFolder" => one(Value::Ref(
            sim.world.create_folder(&this.value, arg(n, "name")?)?,
        )),
        _ => Err(cx.method_not_found()),
    }
}

/// The `CustomFieldsManager`.
fn custom_fields(sim: &mut Sim, cx: Ctx<'_>) -> Result<Outcome, Fault> {
    let Ctx { n, .. } = cx;
    match cx.method {
        "AddCustomFieldDef" => {
            let def = sim
                .world
                .add_field_def(arg(n, "name")?, n.child_text("moType"))?;
            one(field_def(&def))
        }
        "SetField" => {
            let key: i32 = arg(n, "key")?.parse().map_err(|_| Fault::InvalidArgument {
                property: "key".into(),
            })?;
            let value = n.child("value").map(|v| v.text.clone()).unwrap_or_default();
            sim.world.set_field(&moref_arg(n, "entity")?, key, &value)?;
            nothing()
        }
        _ => Err(cx.method_not_found()),
    }
}

/// The `SearchIndex`.
fn search_index(sim: &mut Sim, cx: Ctx<'_>) -> Result<Outcome, Fault> {
    let Ctx { n, .. } = cx;
    match cx.method {
        "FindByInventoryPath" => {
            let path = arg(n, "inventoryPath")?;
            match sim.world.find_path(path) {
                Some(e) => one(Value::Ref(e.moref())),
                None => nothing(),
            }
        }
        "FindChild" => {
            let entity = moref_arg(n, "entity")?;
            let name = n.child("name").map(|c| c.text.as_str()).unwrap_or("");
            match sim.world.find_child(&entity, name)? {
                Some(r) => one(Value::Ref(r)),
                None => nothing(),
            }
        }
        "FindByUuid" => {
            let uuid = arg(n, "uuid")?;
            let vm_search = n.child_bool("vmSearch").unwrap_or(false);
            let instance = n.child_bool("instanceUuid").unwrap_or(false);
            let dc = n.child_moref("datacenter").map(|d| d.value);
            let found = if vm_search {
                sim.world.find_by_uuid(dc.as_deref(), uuid, instance)
            } else {
                None
            };
            match found {
                Some(r) => one(Value::Ref(r)),
                None => nothing(),
            }
        }
        _ => Err(cx.method_not_found()),
    }
}

/// A `Task`.
fn task(sim: &mut Sim, cx: Ctx<'_>) -> Result<Outcome, Fault> {
    let Ctx { this, .. } = cx;
    match cx.method {
        "CancelTask" => {
            sim.world.cancel(&this.value, cx.call.now)?;
            nothing()
        }

        _ => Err(cx.method_not_found()),
    }
}

/// Methods any managed object (`Fetch`) or any entity (`Destroy_Task`, `Rename_Task`)
/// answers, whatever its type; `None` for the others.
fn any_object(sim: &mut Sim, cx: Ctx<'_>) -> Option<Result<Outcome, Fault>> {
    Some(match cx.method {
        "Fetch" => fetch(sim, cx),
        "Destroy_Task" => sim
            .world
            .destroy(cx.this, cx.call)
            .and_then(|task| one(Value::Ref(task))),
        "Rename_Task" => rename(sim, cx),
        _ => return None,
    })
}

/// `Fetch`: one property of any object.
fn fetch(sim: &mut Sim, cx: Ctx<'_>) -> Result<Outcome, Fault> {
    let Ctx { this, n, sess, .. } = cx;
    let prop = arg(n, "prop")?;
    match sim.read(sess, this, prop) {
        Ok(Some(v)) => Ok(Outcome::Reply(Returns::One {
            value: v,
            typed: true,
        })),
        Ok(None) => nothing(),
        Err(PropError::Invalid) => Err(Fault::InvalidProperty { name: prop.into() }),
        Err(PropError::Gone) => Err(Fault::ManagedObjectNotFound { obj: this.clone() }),
    }
}

/// `Rename_Task` of any managed entity.
fn rename(sim: &mut Sim, cx: Ctx<'_>) -> Result<Outcome, Fault> {
    let Ctx { this, n, call, .. } = cx;
    if !is_a(&this.kind, "ManagedEntity") {
        return Err(cx.method_not_found());
    }
    // Not trimmed: the name is the client's, spaces included.
    let name =
        n.child("newName")
            .map(|c| c.text.as_str())
            .ok_or_else(|| Fault::InvalidArgument {
                property: "newName".into(),
            })?;
    one(Value::Ref(sim.world.rename(this, name, call)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::xml::parse;

    #[test]
    fn a_reconfigure_spec_is_decoded_as_govmomi_writes_it() {
        // govmomi 0.24.2's encoding of ReconfigVM_Task (its own xsi prefix).
        let doc = r#"<ReconfigVM_Task xmlns="urn:vim25"><_this type="VirtualMachine">vm-28</_this><spec><changeVersion>2026-11-26T10:00:00Z</changeVersion><annotation> two
lines </annotation><memoryMB>8192</memoryMB><extraConfig xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance" XMLSchema-instance:type="OptionValue"><key>guestinfo.hostname</key><value XMLSchema-instance:type="xsd:string">lab-a</value></extraConfig><extraConfig xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance" XMLSchema-instance:type="OptionValue"><key>guestinfo.old</key></extraConfig></spec></ReconfigVM_Task>"#;
        let n = parse(doc).unwrap();
        let c = config_change(&n).unwrap();
        assert_eq!(
            c,
            ConfigChange {
                change_version: Some("2026-11-26T10:00:00Z".into()),
                name: None,
                annotation: Some(" two\nlines ".into()),
                num_cpus: None,
                memory_mb: Some(8192),
                extra_config: vec![
                    ("guestinfo.hostname".into(), "lab-a".into()),
                    ("guestinfo.old".into(), String::new()),
                ],
                device_change: false,
            }
        );
        let bad = parse(
            r#"<ReconfigVM_Task><spec><numCPUs>many</numCPUs><deviceChange/></spec></ReconfigVM_Task>"#,
        )
        .unwrap();
        assert_eq!(
            config_change(&bad),
            Err(Fault::InvalidArgument {
                property: "spec.numCPUs".into()
            })
        );
    }
}
