//! Request plumbing shared by every API module: the boxed future of an awaited builder,
//! the macro giving a builder its `IntoFuture`, the empty-key check and the mapping of a
//! lease's "not found".

use crate::error::{Error, Result};
use crate::key::KeyRange;
use bytes::Bytes;
use std::future::Future;
use std::pin::Pin;

/// A boxed future returned by awaiting a request builder.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Implements `IntoFuture` for a builder with an `async fn send(self)`, so that awaiting
/// the builder sends it: every awaitable builder of the crate uses it.
macro_rules! into_future {
    ($builder:ident, $output:ty) => {
        impl<'a> ::std::future::IntoFuture for $builder<'a> {
            type Output = $crate::error::Result<$output>;
            type IntoFuture = $crate::request::BoxFuture<'a, $crate::error::Result<$output>>;
            fn into_future(self) -> Self::IntoFuture {
                Box::pin(self.send())
            }
        }
    };
}
pub(crate) use into_future;

/// Fails early on an empty key: etcd refuses it.
pub(crate) fn check_key(key: &Bytes, range: &KeyRange) -> Result<()> {
    if key.is_empty() && matches!(range, KeyRange::Single) {
        return Err(Error::invalid("the key is empty (etcd requires a key)"));
    }
    Ok(())
}

/// Turns "requested lease not found" into [`Error::LeaseNotFound`].
pub(crate) fn lease_error(e: Error, lease_id: i64) -> Error {
    match &e {
        Error::NotFound(_)
            if e.status()
                .is_some_and(|s| s.message.contains("lease not found")) =>
        {
            Error::LeaseNotFound { lease_id }
        }
        _ => e,
    }
}
