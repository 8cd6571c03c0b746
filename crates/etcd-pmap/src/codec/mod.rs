//! Key and value codecs.

pub(crate) mod key;
pub(crate) mod value;
