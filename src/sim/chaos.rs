//! Deterministic fault injection: extra latency and failures per method, session expiry,
//! bursts of HTTP 503 and connections dropped mid-response. Decisions come from one seeded
//! generator, so the same seed and the same request sequence give the same faults.

use std::collections::BTreeMap;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Fault injection settings (the inventory's `faults:` section, or flags).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Per method name (`InstantClone_Task`, `RetrievePropertiesEx`, or `*` for every method).
    pub methods: BTreeMap<String, MethodFaults>,
    /// Sessions expire this many seconds after login, whatever their activity.
    pub session_expiry_secs: Option<u64>,
    /// Bursts of HTTP 503 answers.
    pub http_503: Option<Burst>,
    /// Probability that a response is cut off mid-body and the connection closed.
    pub drop_rate: f64,
}

/// Faults for one method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MethodFaults {
    /// Added before the method runs (real milliseconds, not scaled).
    pub latency_ms: u64,
    /// Probability in [0, 1] that a call fails.
    pub failure_rate: f64,
    /// The vim25 fault type to raise (`SystemError`, `HostCommunication`, …).
    pub fault: String,
    /// `soap`: the call answers with a SOAP fault; `task`: a task method returns a task that
    /// fails with the fault.
    pub mode: FailureMode,
    /// Probability in [0, 1] that the call runs but its answer is lost (the connection is cut
    /// mid-response): the caller cannot tell whether it happened.
    pub drop_rate: f64,
}

impl Default for MethodFaults {
    fn default() -> Self {
        MethodFaults {
            latency_ms: 0,
            failure_rate: 0.0,
            fault: "SystemError".into(),
            mode: FailureMode::Soap,
            drop_rate: 0.0,
        }
    }
}

/// How an injected failure shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureMode {
    Soap,
    Task,
}

/// A burst of 503s: each request starts one with probability `rate`; it lasts `length` requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Burst {
    pub rate: f64,
    pub length: u32,
}

/// What to do to one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    pub latency_ms: u64,
    pub http_503: bool,
    /// Fail the call with this fault type, as a SOAP fault or a failing task.
    pub fail: Option<(String, FailureMode)>,
    pub drop_connection: bool,
}

/// The seeded decision maker.
#[derive(Debug, Clone)]
pub struct Chaos {
    pub config: FaultConfig,
    rng: ChaCha8Rng,
    burst_left: u32,
}

impl Chaos {
    /// A decision maker for `config`, seeded.
    pub fn new(config: FaultConfig, seed: u64) -> Self {
        Chaos {
            config,
            rng: ChaCha8Rng::seed_from_u64(seed),
            burst_left: 0,
        }
    }

    /// Is any injection configured at all?
    pub fn is_active(&self) -> bool {
        self.config != FaultConfig::default()
    }

    fn roll(&mut self, p: f64) -> bool {
        p > 0.0 && self.rng.random_range(0.0..1.0) < p
    }

    /// Decides the fate of one call of `method`.
    pub fn decide(&mut self, method: &str) -> Decision {
        let mut d = Decision::default();
        if !self.is_active() {
            return d;
        }
        if self.burst_left > 0 {
            self.burst_left -= 1;
            d.http_503 = true;
            return d;
        }
        if let Some(b) = self.config.http_503.clone()
            && self.roll(b.rate)
        {
            self.burst_left = b.length.saturating_sub(1);
            d.http_503 = true;
            return d;
        }
        let per = self
            .config
            .methods
            .get(method)
            .or_else(|| self.config.methods.get("*"))
            .cloned();
        let mut method_drop = 0.0;
        if let Some(m) = per {
            d.latency_ms = m.latency_ms;
            if self.roll(m.failure_rate) {
                d.fail = Some((m.fault.clone(), m.mode));
            }
            method_drop = m.drop_rate;
        }
        let drop = self.config.drop_rate;
        d.drop_connection = self.roll(drop) || self.roll(method_drop);
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> FaultConfig {
        let mut methods = BTreeMap::new();
        methods.insert(
            "PowerOnVM_Task".to_string(),
            MethodFaults {
                failure_rate: 0.5,
                ..MethodFaults::default()
            },
        );
        FaultConfig {
            methods,
            http_503: Some(Burst {
                rate: 0.1,
                length: 3,
            }),
            ..FaultConfig::default()
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_faults() {
        let run = |seed| {
            let mut c = Chaos::new(config(), seed);
            (0..200)
                .map(|_| c.decide("PowerOnVM_Task"))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn a_503_burst_lasts_its_length() {
        let mut c = Chaos::new(config(), 1);
        let decisions: Vec<_> = (0..500).map(|_| c.decide("Other")).collect();
        let first = decisions.iter().position(|d| d.http_503).unwrap();
        assert!(decisions[first..first + 3].iter().all(|d| d.http_503));
        assert!(decisions.iter().all(|d| d.fail.is_none()));
    }

    #[test]
    fn no_configuration_injects_nothing() {
        let mut c = Chaos::new(FaultConfig::default(), 1);
        assert!((0..100).all(|_| c.decide("Login") == Decision::default()));
    }
}
