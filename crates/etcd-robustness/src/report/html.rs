//! The HTML page of a failing scenario: per anomaly, a timeline of its operations and
//! faults, and its watch, lock and store records.

use super::FailureRecord;
use std::collections::{BTreeSet, HashSet};
use std::fmt::Write as _;

use crate::check::{describe_op, Anomaly};
use crate::history::{
    Event, EventKind, FaultSpan, Op, Outcome, Request, StoreHistory, Time, WatchRecord,
};

/// Escapes text for HTML and SVG (content and attribute values).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The colours of operation kinds: (name, colour).
const KINDS: [(&str, &str); 4] = [
    ("put", "#4e79a7"),
    ("get", "#59a14f"),
    ("delete", "#f28e2b"),
    ("cas", "#b07aa1"),
];

fn op_kind(op: &Op) -> &'static str {
    match op.request {
        Request::Put { .. } => "put",
        Request::Get { .. } => "get",
        Request::Delete { .. } => "delete",
        Request::Cas { .. } => "cas",
    }
}

fn colour(kind: &str) -> &'static str {
    KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or("#999999", |(_, c)| c)
}

/// A short label for an operation's bar.
fn label(op: &Op) -> String {
    let request = match &op.request {
        Request::Put { value, .. } => format!("put {value}"),
        Request::Get { .. } => "get".to_string(),
        Request::Delete { .. } => "del".to_string(),
        Request::Cas { value, .. } => format!("cas {value}"),
    };
    let outcome = match &op.outcome {
        Outcome::Put { revision } => format!("r{revision}"),
        Outcome::Get { revision, kv } => match kv {
            Some(kv) => format!("{}@{revision}", kv.value),
            None => format!("∅@{revision}"),
        },
        Outcome::Delete { revision, deleted } => format!("{deleted}@{revision}"),
        Outcome::Cas {
            revision,
            succeeded,
        } => format!("{}@{revision}", if *succeeded { "ok" } else { "no" }),
        Outcome::Failed { .. } => "failed".into(),
        Outcome::Unknown { .. } => "?".into(),
    };
    format!("#{} {request} → {outcome}", op.id)
}

/// The whole page: every anomaly listed, the detailed ones with their timelines.
pub(super) fn html_page(
    scenario: &str,
    anomalies: &[Anomaly],
    records: &[FailureRecord],
) -> String {
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{} — {} anomalies</title>\n<style>{STYLE}</style></head><body>\n",
        escape(scenario),
        anomalies.len()
    );
    let _ = writeln!(
        page,
        "<h1>Scenario {} — {} anomal{}</h1>",
        escape(scenario),
        anomalies.len(),
        if anomalies.len() == 1 { "y" } else { "ies" }
    );
    page.push_str(&legend());
    page.push_str("<ol class=\"summary\">\n");
    for (n, anomaly) in anomalies.iter().enumerate() {
        if n < records.len() {
            let _ = writeln!(
                page,
                "<li><a href=\"#anomaly-{}\">{}</a></li>",
                n + 1,
                escape(&anomaly.to_string())
            );
        } else {
            let _ = writeln!(page, "<li>{}</li>", escape(&anomaly.to_string()));
        }
    }
    page.push_str("</ol>\n");
    page.push_str(GRADIENTS);
    for (n, record) in records.iter().enumerate() {
        page.push_str(&section(n + 1, record));
    }
    page.push_str("</body></html>\n");
    page
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}\
h2{font-size:1.1em;margin-top:2em;border-top:1px solid #ccc;padding-top:.8em}\
.message{background:#fff3f3;border-left:4px solid #d62728;padding:.5em .8em;font-family:monospace;white-space:pre-wrap}\
table{border-collapse:collapse;font-size:12px;margin:.5em 0}td,th{border:1px solid #ddd;padding:2px 6px;text-align:left}\
tr.hit td{background:#fff3f3;font-weight:bold}svg text{font-family:monospace}\
.legend span{display:inline-block;margin-right:1em}.legend i{display:inline-block;width:1.2em;height:.8em;margin-right:.3em;vertical-align:middle}\
.op.anomaly rect{stroke:#d62728;stroke-width:3}.summary li{font-family:monospace;font-size:12px}";

/// One fading gradient per kind, for operations of unknown outcome.
const GRADIENTS: &str = "<svg width=\"0\" height=\"0\" style=\"position:absolute\" aria-hidden=\"true\"><defs>\
<linearGradient id=\"fade-put\"><stop offset=\"0\" stop-color=\"#4e79a7\"/><stop offset=\"1\" stop-color=\"#4e79a7\" stop-opacity=\"0\"/></linearGradient>\
<linearGradient id=\"fade-get\"><stop offset=\"0\" stop-color=\"#59a14f\"/><stop offset=\"1\" stop-color=\"#59a14f\" stop-opacity=\"0\"/></linearGradient>\
<linearGradient id=\"fade-delete\"><stop offset=\"0\" stop-color=\"#f28e2b\"/><stop offset=\"1\" stop-color=\"#f28e2b\" stop-opacity=\"0\"/></linearGradient>\
<linearGradient id=\"fade-cas\"><stop offset=\"0\" stop-color=\"#b07aa1\"/><stop offset=\"1\" stop-color=\"#b07aa1\" stop-opacity=\"0\"/></linearGradient>\
</defs></svg>\n";

fn legend() -> String {
    let mut out = String::from("<p class=\"legend\">");
    for (kind, colour) in KINDS {
        let _ = write!(
            out,
            "<span><i style=\"background:{colour}\"></i>{kind}</span>"
        );
    }
    out.push_str(
        "<span><i style=\"background:#ccc;border:1px dashed #666\"></i>failed</span>\
         <span><i style=\"background:linear-gradient(to right,#4e79a7,transparent)\"></i>unknown (open-ended)</span>\
         <span><i style=\"border:3px solid #d62728\"></i>involved in the anomaly</span>\
         Hover a bar for details.</p>\n",
    );
    out
}

/// One anomaly: its message, the operations' timeline, and the records and store events.
fn section(n: usize, record: &FailureRecord) -> String {
    let anomaly = &record.anomaly;
    let history = &record.history;
    let mut out = String::new();
    let _ = write!(
        out,
        "<section id=\"anomaly-{n}\"><h2>{n}. {}</h2>\n<div class=\"message\">{}</div>\n",
        escape(anomaly.kind.name()),
        escape(&anomaly.to_string())
    );
    let marked: HashSet<u64> = anomaly.ops.iter().copied().collect();
    if !history.ops.is_empty() {
        out.push_str(&timeline(&history.ops, &history.faults, &marked));
    }
    for w in &history.watches {
        out.push_str(&watch_table(w, anomaly.revision));
    }
    if !history.locks.is_empty() {
        out.push_str("<h3>Lock holders</h3><table><tr><th>id</th><th>client</th><th>owner key</th><th>queued at</th><th>acquired</th><th>released</th><th>writes</th></tr>\n");
        for l in &history.locks {
            let class = if anomaly.locks.contains(&l.id) {
                " class=\"hit\""
            } else {
                ""
            };
            let writes: Vec<String> = l.writes.iter().map(|id| format!("#{id}")).collect();
            let _ = writeln!(
                out,
                "<tr{class}><td>{}</td><td>c{}</td><td>{}</td><td>r{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                l.id,
                l.client,
                escape(&l.owner_key),
                l.owner_revision,
                ms(l.acquired),
                l.released.map_or_else(|| "—".to_string(), ms),
                escape(&writes.join(" "))
            );
        }
        out.push_str("</table>\n");
    }
    if !history.leases.is_empty() {
        out.push_str("<h3>Leases</h3><table><tr><th>lease</th><th>client</th><th>key</th><th>put</th><th>granted</th><th>lost</th><th>revoked</th><th>kept to the end</th></tr>\n");
        for l in &history.leases {
            let _ = writeln!(
                out,
                "<tr class=\"hit\"><td>{:x}</td><td>c{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                l.lease,
                l.client,
                escape(&l.key),
                l.put.map_or_else(|| "—".to_string(), |id| format!("#{id}")),
                ms(l.granted),
                escape(&l.lost.as_ref().map_or_else(|| "—".to_string(), |(t, why)| format!("{} ({why})", ms(*t)))),
                l.revoked.map_or_else(|| "—".to_string(), ms),
                l.kept_to_end
            );
        }
        out.push_str("</table>\n");
    }
    if let Some(store) = &history.store {
        out.push_str(&store_table(store, anomaly, &history.ops));
    }
    out.push_str("</section>\n");
    out
}

/// Nanoseconds as milliseconds.
fn ms(t: Time) -> String {
    format!("{:.3} ms", t as f64 / 1e6)
}

/// The operations as bars, one row per client.
fn timeline(ops: &[Op], faults: &[FaultSpan], marked: &HashSet<u64>) -> String {
    const WIDTH: f64 = 1100.0;
    const LEFT: f64 = 50.0;
    const ROW: f64 = 26.0;
    const TOP: f64 = 22.0;
    // The window is that of the operations that returned (an open-ended one may have
    // started long before: it is drawn from the left edge).
    let returned: Vec<&Op> = ops.iter().filter(|op| op.ret.is_some()).collect();
    let basis: Vec<&Op> = if returned.is_empty() {
        ops.iter().collect()
    } else {
        returned
    };
    let t0 = basis.iter().map(|op| op.call).min().unwrap_or(0);
    let t1 = basis
        .iter()
        .map(|op| op.ret.unwrap_or(op.call))
        .max()
        .unwrap_or(t0)
        .max(t0 + 1);
    // Open-ended operations run to the right edge, a little past the last return.
    let span = (t1 - t0) as f64 * 1.08;
    let x = |t: Time| LEFT + (t.saturating_sub(t0)) as f64 / span * WIDTH;
    let clients: BTreeSet<u32> = ops.iter().map(|op| op.client).collect();
    let row_of = |c: u32| clients.iter().position(|&x| x == c).unwrap_or(0);
    let height = TOP + ROW * clients.len() as f64 + 10.0;
    let mut out = String::new();
    let _ = write!(
        out,
        "<h3>Operations (time from {} to {})</h3>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" role=\"img\">\n",
        ms(t0),
        ms(t1),
        LEFT + WIDTH + 10.0
    );
    // A time axis: five ticks.
    for i in 0..=4 {
        let t = t0 + (t1 - t0) * i / 4;
        let _ = writeln!(
            out,
            "<line x1=\"{0:.1}\" y1=\"{TOP}\" x2=\"{0:.1}\" y2=\"{height}\" stroke=\"#eee\"/>\
             <text x=\"{0:.1}\" y=\"12\" font-size=\"10\" fill=\"#666\">{1}</text>",
            x(t),
            escape(&ms(t))
        );
    }
    // The faults under way, as shaded bands behind the operations.
    for fault in faults.iter().filter(|f| f.start <= t1 && f.healed >= t0) {
        let (a, b) = (x(fault.start.max(t0)), x(fault.healed.min(t1)));
        let _ = writeln!(
            out,
            "<g class=\"fault\"><title>{}</title><rect x=\"{a:.1}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#f5d76e\" fill-opacity=\"0.35\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"#8a6d00\">{}</text></g>",
            escape(&format!(
                "{} on member {} from {} to {}",
                fault.kind,
                fault.member,
                ms(fault.start),
                ms(fault.healed)
            )),
            (b - a).max(1.0),
            height - TOP,
            a + 2.0,
            height - 2.0,
            escape(&format!("{} (member {})", fault.kind, fault.member))
        );
    }
    for &c in &clients {
        let y = TOP + ROW * row_of(c) as f64;
        let _ = writeln!(
            out,
            "<text x=\"4\" y=\"{:.1}\" font-size=\"11\">c{c}</text>",
            y + 15.0
        );
    }
    for op in ops {
        let kind = op_kind(op);
        let y = TOP + ROW * row_of(op.client) as f64 + 3.0;
        let x0 = x(op.call);
        let x1 = match op.ret {
            Some(ret) => x(ret),
            None => LEFT + WIDTH,
        };
        let w = (x1 - x0).max(2.0);
        let (fill, extra) = match op.outcome {
            Outcome::Failed { .. } => (
                "#cccccc".to_string(),
                " stroke=\"#666\" stroke-dasharray=\"3 2\"",
            ),
            Outcome::Unknown { .. } => (format!("url(#fade-{kind})"), ""),
            _ => (colour(kind).to_string(), ""),
        };
        let class = if marked.contains(&op.id) {
            "op anomaly"
        } else {
            "op"
        };
        let title = format!(
            "{}\ncall {}, return {}{}",
            describe_op(op),
            ms(op.call),
            op.ret.map_or_else(|| "unknown".to_string(), ms),
            op.endpoint
                .as_deref()
                .map(|e| format!(", via {e}"))
                .unwrap_or_default()
        );
        let text = label(op);
        let fits = ((w - 4.0) / 6.2).floor().max(0.0) as usize;
        let shown: String = if text.chars().count() <= fits {
            text
        } else if fits > 2 {
            text.chars()
                .take(fits - 1)
                .chain(std::iter::once('…'))
                .collect()
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "<g class=\"{class}\" data-op=\"{}\"><title>{}</title><rect x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"18\" rx=\"2\" fill=\"{fill}\"{extra}/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"#fff\">{}</text></g>",
            op.id,
            escape(&title),
            x0 + 2.0,
            y + 13.0,
            escape(&shown)
        );
    }
    out.push_str("</svg>\n");
    out
}

/// A watch's deliveries.
fn watch_table(w: &WatchRecord, revision: Option<i64>) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<h3>Watch {} of {} (range end {}) from revision {} (created at r{}), caught up to r{}{}</h3>\n\
         <table><tr><th>time</th><th>revision</th><th>kind</th><th>events</th><th>member</th></tr>\n",
        w.id,
        escape(&format!("{:?}", w.key)),
        escape(&format!("{:?}", w.range_end)),
        w.start_revision,
        w.created_revision,
        w.caught_up_to,
        w.ended.as_ref().map(|e| format!(", ended: {}", escape(e))).unwrap_or_default()
    );
    for d in &w.responses {
        let hit =
            revision.is_some_and(|r| d.revision == r || d.events.iter().any(|e| e.revision == r));
        let events: Vec<String> = d.events.iter().map(show_event).collect();
        let _ = writeln!(
            out,
            "<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if hit { " class=\"hit\"" } else { "" },
            ms(d.time),
            d.revision,
            if d.progress { "progress" } else { "events" },
            escape(&events.join("; ")),
            escape(d.endpoint.as_deref().unwrap_or(""))
        );
    }
    out.push_str("</table>\n");
    out
}

fn show_event(e: &Event) -> String {
    match (&e.kind, &e.kv) {
        (EventKind::Put, Some(kv)) => format!(
            "r{} put {}={} (create {}, version {})",
            e.revision, e.key, kv.value, kv.create_revision, kv.version
        ),
        (EventKind::Put, None) => format!("r{} put {}", e.revision, e.key),
        (EventKind::Delete, _) => format!("r{} delete {}", e.revision, e.key),
    }
}

/// The store's events around the anomaly; those the involved operations refer to are
/// highlighted.
fn store_table(store: &StoreHistory, anomaly: &Anomaly, ops: &[Op]) -> String {
    let mut hits: HashSet<i64> = anomaly.revision.into_iter().collect();
    for op in ops.iter().filter(|op| anomaly.ops.contains(&op.id)) {
        hits.extend(op.outcome.revision());
        if let Outcome::Get { kv: Some(kv), .. } = &op.outcome {
            hits.insert(kv.mod_revision);
        }
    }
    let mut out = format!(
        "<h3>The store's changes (of {}..={})</h3>\n<table><tr><th>revision</th><th>key</th><th>change</th></tr>\n",
        store.first_revision, store.last_revision
    );
    for e in &store.events {
        let _ = writeln!(
            out,
            "<tr{}><td>{}</td><td>{}</td><td>{}</td></tr>",
            if hits.contains(&e.revision) {
                " class=\"hit\""
            } else {
                ""
            },
            e.revision,
            escape(&e.key),
            escape(&show_event(e))
        );
    }
    out.push_str("</table>\n");
    out
}
