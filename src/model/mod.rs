//! The domain model shared by the config loader, the planner and the engine: names, the desired
//! state, the observed state and the ownership markers.

pub mod capacity;
pub mod desired;
pub mod markers;
pub mod names;
pub mod observed;
pub mod ownership;
pub mod pool;
pub mod readiness;
pub mod schedule;
pub mod snapshot_name;
pub mod specdoc;
pub mod thumbprint;

pub use capacity::{INSTANT_CLONE_MEMORY_SHARE, instant_clone_memory_mb};
pub use desired::*;
pub use markers::{Birth, Markers};
pub use names::*;
pub use observed::*;
pub use ownership::{CopyKind, Ownership, Standing, bios_uuid, instance_uuid};
pub use pool::{DesiredPool, PoolWindow, SPARE_INFIX, TemplateVm};
pub use readiness::{After, FailureRecord, GuestinfoCheck, LabPhase, LifeRecord, ReadyChecks};
pub use schedule::CronExpr;
pub use snapshot_name::{HYGIENE_SNAPSHOT_DESCRIPTION, hygiene_snapshot_name, is_hygiene_snapshot};
pub use specdoc::{SpecDoc, spec_hash_of};
pub use thumbprint::{Thumbprint, ThumbprintError};
