//! The retry decision for one failed attempt of a call, as a pure function: re-login, retry
//! after a backoff, or give up (and how). `session::Client::call` only carries it out.

use super::error::Error;
use super::fault::{self, FaultClass};
use super::session::Call;
use super::wire::Fault;

/// A failed attempt: the server's fault or a transport error.
#[derive(Debug)]
pub enum Failed {
    Fault(Fault),
    Transport(Error),
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Log in again, then retry (or, for session-scoped calls, report `SessionRenewed`).
    Relogin,
    /// Retry after a backoff.
    Retry,
    /// Give up with the fault, translated for people.
    FailFault,
    /// Give up: the call may have been applied; the caller must re-observe.
    OutcomeUnknown(String),
    /// Give up with the transport error as it is.
    FailTransport,
}

/// Decides the next step. `attempt` counts retries so far; `relogged` says a re-login already
/// happened during this call (a second `NotAuthenticated` is not retried).
pub fn decide(kind: Call, failed: &Failed, attempt: u32, retries: u32, relogged: bool) -> Step {
    let retry_ok = attempt < retries;
    match failed {
        Failed::Fault(f) => match fault::classify(f) {
            FaultClass::NotAuthenticated if !relogged => Step::Relogin,
            // The server refused the call, so even a change is safe to send again.
            FaultClass::Transient if retry_ok => Step::Retry,
            _ => Step::FailFault,
        },
        Failed::Transport(e) => match e {
            // Not sent at all: safe to retry anything.
            Error::Connect { .. } if retry_ok => Step::Retry,
            Error::Http { status, .. } if fault::is_retryable_status(*status) && retry_ok => {
                Step::Retry
            }
            Error::Http { status, .. } if fault::is_ambiguous_status(*status) => {
                if kind == Call::Mutate {
                    Step::OutcomeUnknown(format!("HTTP {status}"))
                } else if retry_ok {
                    Step::Retry
                } else {
                    Step::FailTransport
                }
            }
            Error::Network { reason, .. } if kind == Call::Mutate => {
                Step::OutcomeUnknown(reason.clone())
            }
            Error::Network { .. } if retry_ok => Step::Retry,
            _ => Step::FailTransport,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(kind: &str) -> Failed {
        Failed::Fault(Fault {
            kind: kind.into(),
            message: String::new(),
            detail: None,
        })
    }
    fn network() -> Failed {
        Failed::Transport(Error::Network {
            method: "CloneVM_Task".into(),
            url: "https://vc/sdk".into(),
            reason: "connection reset".into(),
        })
    }
    fn connect() -> Failed {
        Failed::Transport(Error::Connect {
            url: "https://vc/sdk".into(),
            reason: "refused".into(),
        })
    }
    fn http(status: u16) -> Failed {
        Failed::Transport(Error::Http {
            method: "m".into(),
            url: "u".into(),
            status,
        })
    }

    #[test]
    fn retry_decisions_follow_the_reference_table() {
        use Call::*;
        let cases: Vec<(Call, Failed, u32, bool, Step)> = vec![
            (Read, fault("NotAuthenticated"), 0, false, Step::Relogin),
            (Mutate, fault("NotAuthenticated"), 0, false, Step::Relogin),
            (Read, fault("NotAuthenticated"), 0, true, Step::FailFault),
            (Mutate, fault("TaskInProgress"), 0, false, Step::Retry),
            (Mutate, fault("TaskInProgress"), 4, false, Step::FailFault),
            (Read, fault("InvalidLogin"), 0, false, Step::FailFault),
            (Mutate, fault("DuplicateName"), 0, false, Step::FailFault),
            (Read, fault("SystemError"), 0, false, Step::FailFault),
            (Read, network(), 0, false, Step::Retry),
            (Read, network(), 4, false, Step::FailTransport),
            (Session, network(), 0, false, Step::Retry),
            (Mutate, connect(), 0, false, Step::Retry),
            (Mutate, http(503), 0, false, Step::Retry),
            (Read, http(502), 0, false, Step::Retry),
            (Read, http(404), 0, false, Step::FailTransport),
        ];
        for (kind, failed, attempt, relogged, want) in cases {
            assert_eq!(
                decide(kind, &failed, attempt, 4, relogged),
                want,
                "{kind:?} {failed:?} attempt {attempt} relogged {relogged}"
            );
        }
    }

    #[test]
    fn a_change_is_never_resent_after_it_may_have_reached_the_server() {
        assert_eq!(
            decide(Call::Mutate, &network(), 0, 4, false),
            Step::OutcomeUnknown("connection reset".into())
        );
        assert_eq!(
            decide(Call::Mutate, &http(504), 0, 4, false),
            Step::OutcomeUnknown("HTTP 504".into())
        );
        assert_eq!(
            decide(Call::Mutate, &http(502), 0, 4, false),
            Step::OutcomeUnknown("HTTP 502".into())
        );
    }
}
