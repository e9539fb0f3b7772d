//! The lab state machine and the identity checks, with time passed in.

use super::*;
