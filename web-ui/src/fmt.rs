//! Small formatting helpers shared by the views.

use node_wasm::identity::NodeId;

/// `ab12cd34` for a node id; `you` when it is this node.
pub fn who(id: &NodeId, me: &NodeId) -> String {
    if id == me { format!("{} (you)", id.short()) } else { id.short() }
}

/// A countdown such as `1 m 05 s`, or `passed` once `deadline_ms` is reached.
pub fn countdown(deadline_ms: u64, now_ms: u64) -> String {
    if now_ms >= deadline_ms {
        return "deadline passed".into();
    }
    let s = (deadline_ms - now_ms).div_ceil(1000);
    match s {
        0..60 => format!("{s} s left"),
        60..3600 => format!("{} m {:02} s left", s / 60, s % 60),
        3600..86_400 => format!("{} h {:02} m left", s / 3600, (s % 3600) / 60),
        _ => format!("{} d {} h left", s / 86_400, (s % 86_400) / 3600),
    }
}

/// `HH:MM:SS` (UTC) of a wall-clock time in ms.
pub fn clock(ms: u64) -> String {
    let s = (ms / 1000) % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60)
}

/// Splits a comma-separated field into trimmed, non-empty items.
pub fn list(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
}

/// Parses a whole number of SP from a form field.
pub fn sp(text: &str, what: &str) -> Result<u64, String> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(0);
    }
    t.parse::<u64>().map_err(|_| format!("{what} must be a whole number of SP"))
}

/// The one sort key every list in the UI is ordered by: two numbers, then
/// an id's bytes as the tie-break.
pub type SortKey = (u64, u64, [u8; 32]);

/// `items` in ascending `key` order. Why not `sort_by`: each distinct
/// comparator compiles a whole sort implementation into the wasm; sorting
/// `(SortKey, index)` pairs everywhere compiles exactly one.
pub fn sorted<T>(items: Vec<T>, key: impl Fn(&T) -> SortKey) -> Vec<T> {
    let mut keyed: Vec<(SortKey, usize)> = items.iter().map(key).zip(0..).collect();
    keyed.sort_unstable();
    let mut slots: Vec<Option<T>> = items.into_iter().map(Some).collect();
    keyed.into_iter().filter_map(|(_, i)| slots.get_mut(i).and_then(Option::take)).collect()
}
