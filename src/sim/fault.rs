//! vim25 faults the simulator raises, as SOAP faults or inside `TaskInfo.error`.

use serde::{Deserialize, Serialize};

use super::value::{DataObject, Value};
use crate::model::{MoRef, PowerState};

/// A vim25 fault with the fields vCenter fills in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
pub enum Fault {
    #[error("The session is not authenticated.")]
    NotAuthenticated,
    #[error("Cannot complete login due to an incorrect user name or password.")]
    InvalidLogin,
    #[error("The attempted operation cannot be performed in the current state ({existing:?}).")]
    InvalidPowerState {
        requested: Option<PowerState>,
        existing: PowerState,
    },
    #[error("The operation is not allowed in the current state.")]
    InvalidState,
    #[error("The name '{name}' already exists.")]
    DuplicateName { name: String, object: MoRef },
    /// A name vCenter does not accept for an entity (empty, longer than 80 characters).
    #[error("The name '{name}' is invalid.")]
    InvalidName { name: String, entity: Option<MoRef> },
    /// A `ReconfigVM_Task` whose `changeVersion` is not the VM's current one.
    #[error("Cannot complete operation due to concurrent modification by another operation.")]
    ConcurrentAccess,
    #[error("The object {task} has already been in progress.")]
    TaskInProgress { task: MoRef },
    #[error("A general system error occurred: {reason}")]
    SystemError { reason: String },
    #[error("The object '{obj}' has already been deleted or has not been completely created")]
    ManagedObjectNotFound { obj: MoRef },
    #[error("{receiver} does not implement: {method}")]
    MethodNotFound { receiver: MoRef, method: String },
    #[error("A specified parameter was not correct: {property}")]
    InvalidArgument { property: String },
    #[error("The task was canceled by a user.")]
    RequestCanceled,
    /// The message is the whole faultstring (vCenter's parser errors have their own shape).
    #[error("{0}")]
    InvalidRequest(String),
    #[error("The version of the update request is not valid.")]
    InvalidCollectorVersion,
    #[error("Property {name} is not valid.")]
    InvalidProperty { name: String },
    #[error("The operation is not supported on the object.")]
    NotSupported,
    #[error("The object or item referred to could not be found.")]
    NotFound,
    #[error("Injected fault {0}.")]
    /// A fault chosen by fault injection: a vim25 fault type with no fields
    /// (`HostCommunication`, `SystemError`, …).
    Injected(String),
}

fn power(p: PowerState) -> Value {
    let s = match p {
        PowerState::PoweredOn => "poweredOn",
        PowerState::PoweredOff => "poweredOff",
        PowerState::Suspended => "suspended",
    };
    Value::Enum("VirtualMachinePowerState", s.into())
}

impl Fault {
    /// The vim25 type name (`InvalidPowerState`).
    pub fn type_name(&self) -> &str {
        match self {
            Fault::NotAuthenticated => "NotAuthenticated",
            Fault::InvalidLogin => "InvalidLogin",
            Fault::InvalidPowerState { .. } => "InvalidPowerState",
            Fault::InvalidState => "InvalidState",
            Fault::DuplicateName { .. } => "DuplicateName",
            Fault::InvalidName { .. } => "InvalidName",
            Fault::ConcurrentAccess => "ConcurrentAccess",
            Fault::TaskInProgress { .. } => "TaskInProgress",
            Fault::SystemError { .. } => "SystemError",
            Fault::ManagedObjectNotFound { .. } => "ManagedObjectNotFound",
            Fault::MethodNotFound { .. } => "MethodNotFound",
            Fault::InvalidArgument { .. } => "InvalidArgument",
            Fault::RequestCanceled => "RequestCanceled",
            Fault::InvalidRequest(_) => "InvalidRequest",
            Fault::InvalidCollectorVersion => "InvalidCollectorVersion",
            Fault::InvalidProperty { .. } => "InvalidProperty",
            Fault::NotSupported => "NotSupported",
            Fault::NotFound => "NotFound",
            Fault::Injected(name) => name,
        }
    }

    /// The fault's fields as a data object (its `kind` is a placeholder; writers use
    /// [`Fault::type_name`] for `xsi:type`).
    pub fn fields(&self) -> Vec<(&'static str, Value)> {
        match self {
            Fault::NotAuthenticated => vec![
                ("object", Value::moref("SessionManager", "SessionManager")),
                ("privilegeId", Value::str("System.View")),
            ],
            Fault::InvalidPowerState {
                requested,
                existing,
            } => {
                let mut f = Vec::new();
                if let Some(r) = requested {
                    f.push(("requestedState", power(*r)));
                }
                f.push(("existingState", power(*existing)));
                f
            }
            Fault::DuplicateName { name, object } => vec![
                ("name", Value::str(name.clone())),
                ("object", Value::Ref(object.clone())),
            ],
            Fault::InvalidName { name, entity } => {
                let mut f = vec![("name", Value::str(name.clone()))];
                if let Some(e) = entity {
                    f.push(("entity", Value::Ref(e.clone())));
                }
                f
            }
            Fault::TaskInProgress { task } => vec![("task", Value::Ref(task.clone()))],
            Fault::SystemError { reason } => vec![("reason", Value::str(reason.clone()))],
            Fault::ManagedObjectNotFound { obj } => vec![("obj", Value::Ref(obj.clone()))],
            Fault::MethodNotFound { receiver, method } => vec![
                ("receiver", Value::Ref(receiver.clone())),
                ("method", Value::str(method.clone())),
            ],
            Fault::InvalidArgument { property } => {
                vec![("invalidProperty", Value::str(property.clone()))]
            }
            Fault::InvalidProperty { name } => vec![("name", Value::str(name.clone()))],
            Fault::InvalidRequest(_)
            | Fault::InvalidLogin
            | Fault::InvalidState
            | Fault::ConcurrentAccess
            | Fault::RequestCanceled
            | Fault::InvalidCollectorVersion
            | Fault::NotSupported
            | Fault::NotFound
            | Fault::Injected(_) => Vec::new(),
        }
    }

    /// `LocalizedMethodFault {fault, localizedMessage}` for `TaskInfo.error` and `missingSet`.
    pub fn localized(&self) -> Value {
        DataObject::new("LocalizedMethodFault")
            .typed("fault", self.as_object())
            .with("localizedMessage", Value::str(self.to_string()))
            .into_value()
    }

    /// A fault in a `MethodFault`-typed field of a data object (`CheckResult.error`): typed with
    /// the fault's own type, holding a `LocalizedMethodFault` (`fault`, `localizedMessage`), which
    /// is how pyvmomi deserializes faults found inside data.
    pub fn in_data(&self) -> Value {
        DataObject::new(fault_kind(self.type_name()))
            .typed("fault", self.as_object())
            .with("localizedMessage", Value::str(self.to_string()))
            .into_value()
    }

    /// The fault as a data object value (written with `xsi:type` = its type name).
    pub fn as_object(&self) -> Value {
        let mut obj = DataObject::new(fault_kind(self.type_name()));
        for (name, value) in self.fields() {
            obj = obj.with(name, value);
        }
        obj.into_value()
    }
}

/// Fault type names are needed as `&'static str` by [`DataObject`]; the fixed set is static, and
/// injected names are interned once (a handful per process, chosen by the operator).
fn fault_kind(name: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "NotAuthenticated",
        "InvalidLogin",
        "InvalidPowerState",
        "InvalidState",
        "DuplicateName",
        "TaskInProgress",
        "SystemError",
        "ManagedObjectNotFound",
        "MethodNotFound",
        "InvalidArgument",
        "RequestCanceled",
        "InvalidRequest",
        "InvalidCollectorVersion",
        "InvalidProperty",
        "HostCommunication",
        "ConcurrentAccess",
        "GenericVmConfigFault",
        "NoPermission",
        "NotSupported",
        "NotFound",
        "InvalidName",
    ];
    if let Some(k) = KNOWN.iter().find(|k| **k == name) {
        return k;
    }
    intern(name)
}

fn intern(name: &str) -> &'static str {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let set = NAMES.get_or_init(|| Mutex::new(HashSet::new()));
    let mut guard = match set.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    if let Some(k) = guard.get(name) {
        return k;
    }
    let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
    guard.insert(leaked);
    leaked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_power_state_names_both_states() {
        let f = Fault::InvalidPowerState {
            requested: Some(PowerState::PoweredOff),
            existing: PowerState::PoweredOff,
        };
        let names: Vec<_> = f.fields().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["requestedState", "existingState"]);
        assert_eq!(f.type_name(), "InvalidPowerState");
    }

    #[test]
    fn invalid_name_names_the_name_and_the_entity() {
        let f = Fault::InvalidName {
            name: String::new(),
            entity: Some(MoRef::new("VirtualMachine", "vm-1")),
        };
        let names: Vec<_> = f.fields().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["name", "entity"]);
        assert_eq!(Fault::ConcurrentAccess.type_name(), "ConcurrentAccess");
    }
}
