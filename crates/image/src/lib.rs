//! The Image service (Glance v2 compatible): image records, the local file store, and the
//! format inspector that refuses unsafe images.

pub mod inspector;
