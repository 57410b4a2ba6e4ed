//! Allocation candidates (being written).
