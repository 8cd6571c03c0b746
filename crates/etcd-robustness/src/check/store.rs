//! Lookups in the store's history shared by the checkers.

use std::collections::HashMap;

use crate::history::{Event, EventKind, Expect, KeyValue, Op, Outcome, Request, StoreHistory};

/// The store's history indexed by key and by written value.
pub(crate) struct StoreIndex<'a> {
    pub store: &'a StoreHistory,
    /// Event indices of each key, in store order.
    by_key: HashMap<&'a str, Vec<usize>>,
    /// Put event indices of each value, in store order.
    by_value: HashMap<&'a str, Vec<usize>>,
}

impl<'a> StoreIndex<'a> {
    pub(crate) fn new(store: &'a StoreHistory) -> StoreIndex<'a> {
        let mut by_key: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut by_value: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, e) in store.events.iter().enumerate() {
            by_key.entry(e.key.as_str()).or_default().push(i);
            if let (EventKind::Put, Some(kv)) = (e.kind, &e.kv) {
                by_value.entry(kv.value.as_str()).or_default().push(i);
            }
        }
        // Replays need each key's events by revision even if the store's history is out of
        // order (which the durability check reports).
        for indices in by_key.values_mut() {
            indices.sort_by_key(|&i| store.events[i].revision);
        }
        StoreIndex {
            store,
            by_key,
            by_value,
        }
    }

    /// The events of `key`, in store order.
    pub(crate) fn events_of(&self, key: &str) -> impl Iterator<Item = &'a Event> + '_ {
        self.by_key
            .get(key)
            .into_iter()
            .flatten()
            .map(|&i| &self.store.events[i])
    }

    /// The Put events that wrote `value` (any key), in store order.
    pub(crate) fn puts_of_value(&self, value: &str) -> impl Iterator<Item = &'a Event> + '_ {
        self.by_value
            .get(value)
            .into_iter()
            .flatten()
            .map(|&i| &self.store.events[i])
    }

    /// Where the store applied a write of unknown outcome that put `value` into `key`: the
    /// first such Put event that no acknowledged write claims (a workload may write a value
    /// again after an unknown outcome). `None`: it never applied.
    pub(crate) fn unknown_write_revision(
        &self,
        key: &str,
        value: &str,
        acknowledged: &Acknowledged<'_>,
    ) -> Option<i64> {
        self.puts_of_value(value)
            .filter(|e| e.key == key && !acknowledged.claims(key, value, e.revision))
            .map(|e| e.revision)
            .next()
    }

    /// The state of `key` at revision `rev`: its value after the last change at or before
    /// `rev` (keys did not exist before the store's first revision). `None` when the key
    /// did not exist.
    pub(crate) fn state_at(&self, key: &str, rev: i64) -> Option<&'a KeyValue> {
        let indices = self.by_key.get(key)?;
        // The last change at or below `rev`.
        let n = indices.partition_point(|&i| self.store.events[i].revision <= rev);
        if n == 0 {
            return None;
        }
        let e = &self.store.events[indices[n - 1]];
        match e.kind {
            EventKind::Put => e.kv.as_ref(),
            EventKind::Delete => None,
        }
    }
}

/// The revisions acknowledged writes (puts, swapped compare-and-sets) got, by key and value.
pub(crate) struct Acknowledged<'a>(HashMap<(&'a str, &'a str), Vec<i64>>);

impl<'a> Acknowledged<'a> {
    pub(crate) fn new(ops: &'a [Op]) -> Acknowledged<'a> {
        let mut map: HashMap<(&str, &str), Vec<i64>> = HashMap::new();
        for op in ops {
            let revision = match (&op.request, &op.outcome) {
                (Request::Put { .. }, Outcome::Put { revision }) => *revision,
                (
                    Request::Cas { .. },
                    Outcome::Cas {
                        revision,
                        succeeded: true,
                    },
                ) => *revision,
                _ => continue,
            };
            if let Some(value) = op.request.written_value() {
                map.entry((op.key(), value)).or_default().push(revision);
            }
        }
        Acknowledged(map)
    }

    /// True when an acknowledged write put `value` into `key` at `revision`.
    pub(crate) fn claims(&self, key: &str, value: &str, revision: i64) -> bool {
        self.0
            .get(&(key, value))
            .is_some_and(|revs| revs.contains(&revision))
    }
}

/// True when `k` is inside the range etcd's (`key`, `range_end`) selects: the one key when
/// `range_end` is empty, every key >= `key` when it is `"\0"`, else `key <= k < range_end`.
pub(crate) fn in_range(k: &str, key: &str, range_end: &str) -> bool {
    if range_end.is_empty() {
        k == key
    } else if range_end == "\0" {
        k >= key
    } else {
        k >= key && k < range_end
    }
}

/// Whether `expect` holds for a key whose state is `kv`.
pub(crate) fn holds(kv: Option<&KeyValue>, expect: &Expect) -> bool {
    match expect {
        Expect::Value(v) => kv.is_some_and(|kv| &kv.value == v),
        Expect::Absent => kv.is_none(),
        Expect::ModRevision(m) => kv.map_or(0, |kv| kv.mod_revision) == *m,
    }
}

/// True when two key-values are the same as far as the checkers compare them: value and
/// the three revisions (not the lease, which reads may not report).
pub(crate) fn same_kv(a: &KeyValue, b: &KeyValue) -> bool {
    a.value == b.value
        && a.create_revision == b.create_revision
        && a.mod_revision == b.mod_revision
        && a.version == b.version
}

/// `kv` on one line: `value (create c, mod m, version v)`, or `absent`.
pub(crate) fn show_kv(kv: Option<&KeyValue>) -> String {
    match kv {
        Some(kv) => format!(
            "{:?} (create {}, mod {}, version {})",
            kv.value, kv.create_revision, kv.mod_revision, kv.version
        ),
        None => "absent".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::testkit::Kit;

    #[test]
    fn state_at_replays_changes() {
        let mut kit = Kit::new();
        let r1 = kit.apply_put("a", "x", 0);
        let r2 = kit.apply_put("a", "y", 0);
        let r3 = kit.apply_delete("a").unwrap();
        let store = kit.store();
        let index = StoreIndex::new(&store);
        assert!(index.state_at("a", r1 - 1).is_none());
        assert_eq!(index.state_at("a", r1).unwrap().value, "x");
        let at2 = index.state_at("a", r2).unwrap();
        assert_eq!(
            (at2.value.as_str(), at2.version, at2.create_revision),
            ("y", 2, r1)
        );
        assert!(index.state_at("a", r3).is_none());
        let none = Acknowledged::new(&[]);
        assert_eq!(index.unknown_write_revision("a", "y", &none), Some(r2));
        assert_eq!(index.unknown_write_revision("b", "y", &none), None);
    }

    #[test]
    fn unknown_writes_do_not_take_acknowledged_revisions() {
        let mut kit = Kit::new();
        // An unknown write of "v" that did not apply, then an acknowledged one that did.
        kit.unknown_put_value(0, "a", "v", 0);
        kit.put_value(0, "a", "v", 10, 20);
        let history = kit.finish();
        let store = history.store.as_ref().unwrap();
        let index = StoreIndex::new(store);
        let acknowledged = Acknowledged::new(&history.ops);
        assert_eq!(index.unknown_write_revision("a", "v", &acknowledged), None);
    }

    #[test]
    fn ranges_follow_etcd() {
        assert!(in_range("a", "a", ""));
        assert!(!in_range("ab", "a", ""));
        assert!(in_range("ab", "a", "\0"));
        assert!(!in_range("0", "a", "\0"));
        assert!(in_range("ab", "a", "b"));
        assert!(!in_range("b", "a", "b"));
    }
}
