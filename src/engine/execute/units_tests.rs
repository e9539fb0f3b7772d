//! Tests of the expansion of plan steps into units.
