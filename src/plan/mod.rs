//! The pure planner: `plan(&Desired, &Observed, now, &Policy) -> Plan`.
