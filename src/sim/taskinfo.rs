//! Data objects the simulator builds from its own state: `TaskInfo`, `ServiceContent` with
//! `about`, `UserSession`, `CustomFieldDef`.

use super::state::Session;
use super::tasks::Task;
use super::value::{DataObject, Value};
use super::world::{FieldDef, World};

/// The API version the simulator claims.
pub const API_VERSION: &str = "8.0.3.0";

/// `TaskInfo`, fields in WSDL order.
pub fn task_info(t: &Task) -> Value {
    let r = t.moref();
    DataObject::new("TaskInfo")
        .with("key", Value::str(r.value.clone()))
        .with("task", Value::Ref(r))
        .with("name", Value::str(t.method.clone()))
        .with("descriptionId", Value::str(t.description_id.clone()))
        .with("entity", Value::Ref(t.entity.clone()))
        .with("entityName", Value::str(t.entity_name.clone()))
        .with(
            "state",
            Value::Enum("TaskInfoState", t.state.as_str().into()),
        )
        .with("cancelled", Value::Bool(t.cancelled))
        .with("cancelable", Value::Bool(t.is_active() && t.cancelable()))
        .opt("error", t.error.as_ref().map(|f| f.localized()))
        .opt_typed(
            "result",
            t.result
                .clone()
                .map(Value::Ref)
                .or_else(|| t.checks.as_ref().map(|c| check_results(c))),
        )
        .opt(
            "progress",
            match t.state {
                super::tasks::TaskState::Running => Some(Value::Int(50)),
                super::tasks::TaskState::Success => Some(Value::Int(100)),
                _ => None,
            },
        )
        .typed(
            "reason",
            DataObject::new("TaskReasonUser")
                .with("userName", Value::str(t.user.clone()))
                .into_value(),
        )
        .with("queueTime", Value::Time(t.queue_time))
        .opt("startTime", t.start_time.map(Value::Time))
        .opt("completeTime", t.complete_time.map(Value::Time))
        .with(
            "eventChainId",
            Value::Int(i32::try_from(t.num).unwrap_or(i32::MAX)),
        )
        .into_value()
}

/// `ArrayOfCheckResult`; `warning` and `error` are `MethodFault[]` (see [`super::fault::Fault::in_data`]).
fn check_results(checks: &[super::tasks::CheckOutcome]) -> Value {
    Value::Array(
        "CheckResult",
        checks
            .iter()
            .map(|c| {
                DataObject::new("CheckResult")
                    .with("vm", Value::Ref(c.vm.clone()))
                    .opt("host", c.host.clone().map(Value::Ref))
                    .with(
                        "warning",
                        Value::Array(
                            "MethodFault",
                            c.warnings.iter().map(|f| f.in_data()).collect(),
                        ),
                    )
                    .with(
                        "error",
                        Value::Array(
                            "MethodFault",
                            c.errors.iter().map(|f| f.in_data()).collect(),
                        ),
                    )
                    .into_value()
            })
            .collect(),
    )
}

/// `AboutInfo`.
pub fn about(w: &World) -> Value {
    DataObject::new("AboutInfo")
        .with("name", Value::str("VMware vCenter Server"))
        .with(
            "fullName",
            Value::str("VMware vCenter Server 8.0.3 build-24022515 (labsync sim)"),
        )
        .with("vendor", Value::str("VMware, Inc."))
        .with("version", Value::str("8.0.3"))
        .with("build", Value::str("24022515"))
        .with("localeVersion", Value::str("INTL"))
        .with("localeBuild", Value::str("000"))
        .with("osType", Value::str("linux-x64"))
        .with("productLineId", Value::str("vpx"))
        .with("apiType", Value::str("VirtualCenter"))
        .with("apiVersion", Value::str(API_VERSION))
        .with("instanceUuid", Value::str(w.instance_uuid.clone()))
        .with(
            "licenseProductName",
            Value::str("VMware VirtualCenter Server"),
        )
        .with("licenseProductVersion", Value::str("8.0"))
        .into_value()
}

/// `ServiceContent`, fields in WSDL order.
pub fn service_content(w: &World) -> Value {
    DataObject::new("ServiceContent")
        .with("rootFolder", Value::moref("Folder", &w.root))
        .with(
            "propertyCollector",
            Value::moref("PropertyCollector", "propertyCollector"),
        )
        .with("viewManager", Value::moref("ViewManager", "ViewManager"))
        .with("about", about(w))
        .with(
            "sessionManager",
            Value::moref("SessionManager", "SessionManager"),
        )
        .with("taskManager", Value::moref("TaskManager", "TaskManager"))
        .with(
            "customFieldsManager",
            Value::moref("CustomFieldsManager", "CustomFieldsManager"),
        )
        .with("searchIndex", Value::moref("SearchIndex", "SearchIndex"))
        .with(
            "vmProvisioningChecker",
            Value::moref("VirtualMachineProvisioningChecker", "VmProvisioningChecker"),
        )
        .into_value()
}

/// `UserSession`.
pub fn user_session(s: &Session) -> Value {
    DataObject::new("UserSession")
        .with("key", Value::str(session_id(&s.key)))
        .with("userName", Value::str(s.user.clone()))
        .with("fullName", Value::str(s.user.clone()))
        .with("loginTime", Value::Time(s.login_time))
        .with("lastActiveTime", Value::Time(s.last_active))
        .with("locale", Value::str("en"))
        .with("messageLocale", Value::str("en"))
        .with("extensionSession", Value::Bool(false))
        .with("ipAddress", Value::str("127.0.0.1"))
        .with("userAgent", Value::str(""))
        .with("callCount", Value::Long(0))
        .into_value()
}

/// The public session id (`UserSession.key`): derived from, but not equal to, the cookie.
pub fn session_id(cookie: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(cookie.as_bytes());
    let h = hex::encode(&digest[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// `CustomFieldDef`.
pub fn field_def(f: &FieldDef) -> Value {
    DataObject::new("CustomFieldDef")
        .with("key", Value::Int(f.key))
        .with("name", Value::str(f.name.clone()))
        .with("type", Value::str("string"))
        .opt("managedObjectType", f.mo_type.clone().map(Value::str))
        .into_value()
}
