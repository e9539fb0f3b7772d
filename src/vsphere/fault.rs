//! Fault classification, per the reference table: what is transient (retry with backoff), what
//! means "already done" (success), and what needs a person. Pure functions over [`Fault`].

use std::borrow::Cow;
use std::fmt::Write as _;
use std::time::Duration;

use rand::RngExt;

use super::error::Error;
use super::wire::Fault;

/// How the client reacts to a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultClass {
    /// The session is gone: log in again once, recreate session objects, retry.
    NotAuthenticated,
    /// Retry the same call after a backoff (`TaskInProgress`, `ConcurrentAccess`, …).
    Transient,
    /// Bad credentials: stop, no retry.
    InvalidLogin,
    /// Everything else: surface it to the caller, who decides.
    Permanent,
}

/// Faults that go away by themselves.
const TRANSIENT: &[&str] = &[
    "TaskInProgress",
    "ConcurrentAccess",
    "HostCommunication",
    "ResourceInUse",
];

/// The fault types labsync knows by name: those it classifies or handles, and those a lab's
/// operations commonly meet. Metrics name these and count any other as `other`, so a server
/// that invents fault types cannot grow the number of series without bound.
pub const KNOWN_FAULTS: &[&str] = &[
    "NotAuthenticated",
    "InvalidLogin",
    "NoPermission",
    "MethodNotFound",
    "TaskInProgress",
    "ConcurrentAccess",
    "HostCommunication",
    "ResourceInUse",
    "InvalidState",
    "InvalidPowerState",
    "FileLocked",
    "FileNotFound",
    "DuplicateName",
    "ManagedObjectNotFound",
    "InvalidArgument",
    "InvalidName",
    "NotSupported",
    "InsufficientResourcesFault",
    "SystemError",
];

/// Classifies a fault.
pub fn classify(fault: &Fault) -> FaultClass {
    match fault.kind.as_str() {
        "NotAuthenticated" => FaultClass::NotAuthenticated,
        "InvalidLogin" => FaultClass::InvalidLogin,
        k if TRANSIENT.contains(&k) => FaultClass::Transient,
        _ => FaultClass::Permanent,
    }
}

/// Text from the server made safe to print: C0 and C1 control characters (tab and newline
/// included: a message is shown on one line) and the bidirectional controls (U+200E, U+200F,
/// U+202A–U+202E, U+2066–U+2069) are written as `\u{…}`. A fault's message is the server's
/// text; a hostile or broken vCenter could otherwise recolor the terminal, move its cursor, or
/// make the text around it read backwards.
pub fn shown(text: &str) -> Cow<'_, str> {
    fn unsafe_char(c: char) -> bool {
        c.is_control()
            || matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    }
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Turns a fault into the error people should see: `InvalidLogin` names the user,
/// `MethodNotFound` the method and the server, `NoPermission` the privilege and the object.
pub fn to_error(method: &str, f: Fault, user: &str, server: &str) -> Error {
    match f.kind.as_str() {
        "InvalidLogin" => Error::InvalidLogin { user: user.into() },
        // The fields quoted here are the server's text, as the fault's message is.
        "MethodNotFound" => Error::MethodNotFound {
            method: shown(f.field("method").unwrap_or(method)).into_owned(),
            server: shown(server).into_owned(),
        },
        "NoPermission" => Error::NoPermission {
            method: method.into(),
            privilege: shown(f.field("privilegeId").unwrap_or("(not named)")).into_owned(),
            object: f
                .moref_field("object")
                .map(|m| shown(&m.to_string()).into_owned())
                .unwrap_or_else(|| "(unknown object)".into()),
        },
        _ => Error::Fault {
            method: method.into(),
            fault: Box::new(f),
        },
    }
}

/// HTTP statuses that mean "try again later" without any doubt that the call did nothing.
pub fn is_retryable_status(status: u16) -> bool {
    status == 503
}

/// HTTP statuses from a proxy or load balancer where the call may or may not have reached
/// vCenter.
pub fn is_ambiguous_status(status: u16) -> bool {
    matches!(status, 502 | 504)
}

/// `InvalidPowerState` whose existing state is the one we asked for: the VM is already there.
pub fn already_in_power_state(fault: &Fault, wanted: &str) -> bool {
    fault.is("InvalidPowerState") && fault.field("existingState") == Some(wanted)
}

/// Exponential backoff with full jitter: attempt 0 waits up to `base`, doubling up to `cap`.
pub fn backoff(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let ceiling = base
        .saturating_mul(1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX))
        .min(cap);
    let millis = ceiling.as_millis().max(1) as u64;
    Duration::from_millis(rand::rng().random_range(millis / 2..=millis))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vsphere::wire::envelope::{Response, unwrap};

    fn fault_of(doc: &str) -> Fault {
        match unwrap(doc).unwrap() {
            Response::Fault(f) => f,
            Response::Ok(el) => panic!("expected a fault, got {el:?}"),
        }
    }

    #[test]
    fn vcsim_not_authenticated_fault_is_classified_for_relogin() {
        let f = fault_of(include_str!(
            "../../tests/fixtures/vcsim/not_authenticated.xml"
        ));
        assert_eq!(classify(&f), FaultClass::NotAuthenticated);
    }

    #[test]
    fn vcsim_invalid_login_is_fatal_not_transient() {
        let f = fault_of(include_str!("../../tests/fixtures/vcsim/login_invalid.xml"));
        assert_eq!(f.message, "Login failure");
        assert_eq!(classify(&f), FaultClass::InvalidLogin);
    }

    #[test]
    fn vcsim_method_not_found_says_the_server_does_not_implement_instant_clone() {
        let f = fault_of(include_str!(
            "../../tests/fixtures/vcsim/instant_clone_method_not_found.xml"
        ));
        let e = to_error(
            "InstantClone_Task",
            f,
            "u",
            "VMware vCenter Server 6.5.0, API 6.5",
        );
        assert_eq!(
            e.to_string(),
            "this server does not implement InstantClone_Task (VMware vCenter Server 6.5.0, API 6.5)"
        );
    }

    #[test]
    fn no_permission_names_the_privilege_and_the_object() {
        let doc = r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>Permission to perform this operation was denied.</faultstring><detail><NoPermissionFault xmlns="urn:vim25" xsi:type="NoPermission"><object type="Folder">group-v3</object><privilegeId>VirtualMachine.Provisioning.Clone</privilegeId></NoPermissionFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"#;
        let e = to_error("CloneVM_Task", fault_of(doc), "u", "vc");
        assert_eq!(
            e.to_string(),
            "permission denied: CloneVM_Task needs privilege VirtualMachine.Provisioning.Clone on Folder:group-v3"
        );
    }

    #[test]
    fn vcsim_duplicate_name_keeps_its_fields() {
        let f = fault_of(include_str!(
            "../../tests/fixtures/vcsim/create_folder_duplicate.xml"
        ));
        assert!(f.is("DuplicateName"));
        assert_eq!(f.field("name"), Some("labs"));
        let e = to_error("CreateFolder", f, "u", "vc");
        assert!(e.is_fault("DuplicateName"));
    }

    #[test]
    fn a_hostile_fault_is_shown_with_its_control_and_bidi_characters_escaped() {
        let doc = "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>\u{1b}[2J\u{1b}[31mfake\u{9b}1m \u{202e}gnp.exe\u{202c}\u{2066}x\u{2069}\u{200f}\nnext\ttab</faultstring><detail><SystemErrorFault xmlns=\"urn:vim25\" xsi:type=\"System\u{202e}Error\"><reason>r</reason></SystemErrorFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>";
        let f = fault_of(doc);
        // Kept as sent, for matching and fields; escaped only where shown.
        assert!(f.message.contains('\u{202e}'));
        let e = to_error("Destroy_Task", f, "u", "vc").to_string();
        assert_eq!(
            e,
            "Destroy_Task failed: System\\u{202e}Error: \\u{1b}[2J\\u{1b}[31mfake\\u{9b}1m \\u{202e}gnp.exe\\u{202c}\\u{2066}x\\u{2069}\\u{200f}\\u{a}next\\u{9}tab"
        );
        assert!(
            !e.chars()
                .any(|c| c.is_control() || ('\u{2000}'..='\u{206f}').contains(&c))
        );
    }

    #[test]
    fn a_fault_of_plain_text_is_shown_as_sent() {
        assert!(matches!(shown("Login failure: é ü 日本"), Cow::Borrowed(_)));
        assert_eq!(
            shown("a\u{7f}b\u{85}c\u{200e}"),
            "a\\u{7f}b\\u{85}c\\u{200e}"
        );
    }

    #[test]
    fn no_permission_quotes_the_servers_privilege_escaped() {
        let doc = "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>denied</faultstring><detail><NoPermissionFault xmlns=\"urn:vim25\" xsi:type=\"NoPermission\"><object type=\"Folder\">group-v3</object><privilegeId>VM.\u{1b}]0;owned\u{7}Clone</privilegeId></NoPermissionFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>";
        let e = to_error("CloneVM_Task", fault_of(doc), "u", "vc").to_string();
        assert!(
            e.contains("privilege VM.\\u{1b}]0;owned\\u{7}Clone on"),
            "{e}"
        );
    }

    #[test]
    fn task_in_progress_is_transient_and_duplicate_name_is_not() {
        let mk = |k: &str| Fault {
            kind: k.into(),
            message: String::new(),
            detail: None,
        };
        assert_eq!(classify(&mk("TaskInProgress")), FaultClass::Transient);
        assert_eq!(classify(&mk("DuplicateName")), FaultClass::Permanent);
        assert_eq!(classify(&mk("SystemError")), FaultClass::Permanent);
    }

    #[test]
    fn every_fault_classify_knows_is_known_by_name() {
        for k in TRANSIENT
            .iter()
            .chain(&["NotAuthenticated", "InvalidLogin"])
        {
            assert!(KNOWN_FAULTS.contains(k), "{k}");
        }
    }

    #[test]
    fn backoff_grows_but_stays_under_the_cap() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(2);
        for attempt in 0..40 {
            let d = backoff(attempt, base, cap);
            assert!(d <= cap, "attempt {attempt}: {d:?}");
            assert!(d >= Duration::from_millis(50));
        }
        assert!(backoff(5, base, cap) >= Duration::from_secs(1));
    }

    #[test]
    fn ambiguous_gateway_statuses_are_not_retryable() {
        assert!(is_retryable_status(503));
        assert!(!is_retryable_status(502) && is_ambiguous_status(502));
        assert!(is_ambiguous_status(504));
    }
}
