//! Query-string parsers (being written).
