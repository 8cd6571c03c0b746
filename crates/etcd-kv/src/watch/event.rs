//! What a watch yields: events ([`WatchEvent`]) grouped by revision into
//! [`WatchResponse`]s, built from the wire's events; and which servers order progress
//! notifications with events. A leaf of the watch modules.

use crate::key::Namespace;
use crate::types::KeyValue;
use etcd_wire::header::EventType;

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// The key was written.
    Put,
    /// The key was deleted (or its lease expired).
    Delete,
}

/// Shows `PUT` or `DELETE`, as etcdctl does.
impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EventKind::Put => "PUT",
            EventKind::Delete => "DELETE",
        })
    }
}

/// Shows `PUT config/mode = active` or `DELETE config/mode` (key and value as text, or
/// escaped bytes); `{:#}` adds the revision: `PUT config/mode = active (rev 12)`.
impl std::fmt::Display for WatchEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ", self.kind)?;
        match self.kind {
            EventKind::Put => {
                crate::types::show_bytes(f, self.kv.key())?;
                f.write_str(" = ")?;
                crate::types::show_bytes(f, self.kv.value())?;
            }
            EventKind::Delete => crate::types::show_bytes(f, self.kv.key())?,
        }
        if f.alternate() {
            write!(f, " (rev {})", self.revision())?;
        }
        Ok(())
    }
}

/// One change to one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    pub(crate) kind: EventKind,
    pub(crate) kv: KeyValue,
    pub(crate) prev_kv: Option<KeyValue>,
}

impl WatchEvent {
    /// Put or delete.
    pub fn kind(&self) -> EventKind {
        self.kind
    }

    /// True for a put.
    pub fn is_put(&self) -> bool {
        self.kind == EventKind::Put
    }

    /// True for a delete.
    pub fn is_delete(&self) -> bool {
        self.kind == EventKind::Delete
    }

    /// The key-value after the change (for a delete: the key, with the deletion revision as
    /// its mod revision and an empty value).
    pub fn kv(&self) -> &KeyValue {
        &self.kv
    }

    /// The key.
    pub fn key(&self) -> &[u8] {
        self.kv.key()
    }

    /// The key-value before the change, when the watch asked for `prev_kv()` and it existed.
    pub fn prev_kv(&self) -> Option<&KeyValue> {
        self.prev_kv.as_ref()
    }

    /// The revision of the change.
    pub fn revision(&self) -> i64 {
        self.kv.mod_revision()
    }
}

/// The events of one revision (one transaction), or a progress notification, or (from a
/// watch that [resyncs](crate::Watch::resync_on_compaction)) the changes a compaction hid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchResponse {
    revision: i64,
    events: Vec<WatchEvent>,
    resync: bool,
}

impl WatchResponse {
    /// The revision of the events; for a progress notification, the store revision up to
    /// which every event has been delivered.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// The events of this revision, in the order etcd applied them.
    pub fn events(&self) -> &[WatchEvent] {
        &self.events
    }

    /// Takes the events.
    pub fn into_events(self) -> Vec<WatchEvent> {
        self.events
    }

    /// True for a progress notification (no events).
    pub fn is_progress_notify(&self) -> bool {
        self.events.is_empty()
    }

    /// True for the synthetic events of a resync after a compaction (see
    /// [`Watch::resync_on_compaction`](crate::Watch::resync_on_compaction)): the puts and
    /// deletes that turn what the watch delivered before into the range as it is at
    /// [`revision`](Self::revision). They carry no previous key-values; a delete's key-value
    /// has the resync's revision (the key was deleted at it or before). A resync of many
    /// keys comes as several responses of the same revision.
    pub fn is_resync(&self) -> bool {
        self.resync
    }
}

/// Splits a message's events into one response per revision, keeping etcd's order.
pub(crate) fn group_by_revision(
    events: Vec<etcd_wire::header::Event>,
    ns: &Namespace,
) -> Vec<WatchResponse> {
    let mut out: Vec<WatchResponse> = Vec::new();
    for e in events {
        let event = WatchEvent {
            kind: match e.r#type {
                EventType::Put => EventKind::Put,
                EventType::Delete => EventKind::Delete,
                // `EventType` is `#[non_exhaustive]`, but etcd-wire decodes no value it does
                // not name: only a variant added there without a mapping here reaches this.
                other => {
                    tracing::warn!(?other, "watch event of an unknown type skipped");
                    continue;
                }
            },
            kv: KeyValue::from_wire(e.kv, |k| ns.strip(k)),
            prev_kv: e.prev_kv.map(|kv| KeyValue::from_wire(kv, |k| ns.strip(k))),
        };
        let revision = event.revision();
        match out.last_mut() {
            Some(last) if last.revision == revision => last.events.push(event),
            _ => out.push(WatchResponse {
                revision,
                events: vec![event],
                resync: false,
            }),
        }
    }
    out
}

impl WatchResponse {
    /// The events of one revision.
    pub(crate) fn from_events(revision: i64, events: Vec<WatchEvent>) -> WatchResponse {
        WatchResponse {
            revision,
            events,
            resync: false,
        }
    }

    /// Synthetic events of a resync at `revision`.
    pub(crate) fn resync(revision: i64, events: Vec<WatchEvent>) -> WatchResponse {
        WatchResponse {
            revision,
            events,
            resync: true,
        }
    }

    /// A progress notification at `revision`.
    pub(crate) fn progress(revision: i64) -> WatchResponse {
        WatchResponse::from_events(revision, Vec::new())
    }

    /// Keeps the events `keep` accepts (the same response, resync or not).
    pub(crate) fn retain(&mut self, keep: impl FnMut(&WatchEvent) -> bool) {
        self.events.retain(keep);
    }
}

/// Whether a server of `version` orders progress notifications with events (etcd
/// issue #15220, fixed in 3.4.25 and 3.5.8).
pub(crate) fn progress_is_ordered(version: &str) -> bool {
    let mut parts = version
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor, patch) = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    match (major, minor) {
        (3, 4) => patch >= 25,
        (3, 5) => patch >= 8,
        (3, m) => m >= 6,
        (m, _) => m > 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use etcd_wire::header::{Event, KeyValue as WireKv};

    fn ev(key: &str, rev: i64) -> Event {
        Event {
            r#type: EventType::Put,
            kv: WireKv {
                key: Bytes::copy_from_slice(key.as_bytes()),
                mod_revision: rev,
                ..WireKv::default()
            },
            prev_kv: None,
        }
    }

    #[test]
    fn events_print_as_etcdctl_names_them() {
        let put = WatchEvent {
            kind: EventKind::Put,
            kv: KeyValue::from_wire(ev("k", 7).kv, |k| k),
            prev_kv: None,
        };
        assert_eq!(put.to_string(), "PUT k = ");
        assert_eq!(format!("{put:#}"), "PUT k =  (rev 7)");
        let mut wire = ev("\u{e9}", 8).kv;
        wire.key = Bytes::from_static(b"\xff");
        let delete = WatchEvent {
            kind: EventKind::Delete,
            kv: KeyValue::from_wire(wire, |k| k),
            prev_kv: None,
        };
        assert_eq!(delete.to_string(), "DELETE b\"\\xff\"");
    }

    #[test]
    fn groups_events_of_one_revision() {
        let ns = Namespace(Bytes::from_static(b"ns/"));
        let groups = group_by_revision(vec![ev("ns/a", 5), ev("ns/b", 5), ev("ns/c", 6)], &ns);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].revision(), 5);
        assert_eq!(groups[0].events().len(), 2);
        assert_eq!(groups[0].events()[1].key(), b"b");
        assert_eq!(groups[1].revision(), 6);
    }
}
