//! A progress bar on stderr, shown only when stderr is a terminal.
//!
//! The bar stretches to the terminal's width, and what surrounds it is short enough for a
//! 60-column terminal: `importing ====>    12,000/50,000 4,000/s 9s`.

use indicatif::{HumanCount, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use std::io::IsTerminal;

/// What a bar counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    /// Records or keys.
    Items,
    /// Bytes of a file (shown as KiB, MiB...).
    Bytes,
}

/// A progress bar that draws on stderr when it is a terminal, and is a no-op otherwise.
#[derive(Debug, Clone)]
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar with `message` counting items (keys, records), of `len` steps when known (a
    /// counter otherwise). Hidden when `enabled` is false or stderr is not a terminal.
    pub fn new(enabled: bool, message: &str, len: Option<u64>) -> Progress {
        Progress::on_stderr(enabled, message, len, Unit::Items)
    }

    /// A bar with `message` counting the bytes of a file of `len` bytes, shown with their
    /// unit (`1.50 MiB/12.00 MiB`). Hidden when `enabled` is false or stderr is not a
    /// terminal.
    pub fn bytes(enabled: bool, message: &str, len: u64) -> Progress {
        Progress::on_stderr(enabled, message, Some(len), Unit::Bytes)
    }

    fn on_stderr(enabled: bool, message: &str, len: Option<u64>, unit: Unit) -> Progress {
        if !enabled || !std::io::stderr().is_terminal() {
            return Progress::hidden();
        }
        Progress::with_target(ProgressDrawTarget::stderr(), message, len, unit)
    }

    fn with_target(
        target: ProgressDrawTarget,
        message: &str,
        len: Option<u64>,
        unit: Unit,
    ) -> Progress {
        let bar = ProgressBar::with_draw_target(len, target);
        bar.set_style(style(len.is_some(), unit));
        bar.set_message(message.to_string());
        Progress { bar }
    }

    /// A bar that never draws.
    pub fn hidden() -> Progress {
        Progress {
            bar: ProgressBar::hidden(),
        }
    }

    /// Whether the bar draws anything.
    pub fn is_visible(&self) -> bool {
        !self.bar.is_hidden()
    }

    /// Sets the number of steps.
    pub fn set_length(&self, len: u64) {
        self.bar.set_length(len);
    }

    /// Advances by `n` steps.
    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
    }

    /// Moves to step `n`.
    pub fn set_position(&self, n: u64) {
        self.bar.set_position(n);
    }

    /// The current step (kept by a hidden bar too).
    pub fn position(&self) -> u64 {
        self.bar.position()
    }

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// The bar's look: a bar as wide as the terminal allows, then at most about 40 columns of
/// figures (a rate without decimals, an ETA).
fn style(known_length: bool, unit: Unit) -> ProgressStyle {
    let template = match (known_length, unit) {
        (true, Unit::Items) => "{msg} {wide_bar} {human_pos}/{human_len} {rate} {eta}",
        (true, Unit::Bytes) => "{msg} {wide_bar} {bytes}/{total_bytes} {binary_bytes_per_sec}",
        (false, Unit::Items) => "{msg} {spinner} {human_pos} {rate}",
        (false, Unit::Bytes) => "{msg} {spinner} {bytes} {binary_bytes_per_sec}",
    };
    let rate = |state: &ProgressState, w: &mut dyn std::fmt::Write| {
        let _ = write!(w, "{}/s", HumanCount(state.per_sec() as u64));
    };
    match ProgressStyle::with_template(template) {
        Ok(style) => style.with_key("rate", rate).progress_chars("=> "),
        Err(_) => ProgressStyle::default_bar(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use indicatif::TermLike;
    use std::sync::{Arc, Mutex};

    /// A 60-column terminal that records what is drawn, line by line.
    #[derive(Debug, Clone, Default)]
    struct Narrow(Arc<Mutex<Vec<String>>>);

    impl Narrow {
        fn push(&self, s: &str, newline: bool) {
            let mut lines = self.0.lock().unwrap_or_else(|e| e.into_inner());
            if lines.is_empty() {
                lines.push(String::new());
            }
            if let Some(last) = lines.last_mut() {
                last.push_str(s);
            }
            if newline {
                lines.push(String::new());
            }
        }
    }

    impl TermLike for Narrow {
        fn width(&self) -> u16 {
            60
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.push(s, true);
            Ok(())
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            self.push(s, false);
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            self.push("", true);
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn drawn(message: &str, len: Option<u64>, unit: Unit, steps: &[u64]) -> Vec<String> {
        let term = Narrow::default();
        let target = ProgressDrawTarget::term_like_with_hz(Box::new(term.clone()), 255);
        let p = Progress::with_target(target, message, len, unit);
        for &n in steps {
            p.set_position(n);
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        p.bar.abandon();
        let lines = term.0.lock().unwrap().clone();
        lines.into_iter().filter(|l| !l.trim().is_empty()).collect()
    }

    #[test]
    fn bars_fit_a_60_column_terminal() {
        let cases = [
            ("importing", Some(1_000_000), Unit::Items),
            ("comparing", Some(50_000), Unit::Items),
            ("exporting", None, Unit::Items),
            ("checking", Some(3 << 30), Unit::Bytes),
        ];
        for (message, len, unit) in cases {
            let top = len.unwrap_or(987_654);
            let lines = drawn(message, len, unit, &[1, top / 3, top]);
            assert!(!lines.is_empty(), "{message}: nothing drawn");
            for line in &lines {
                assert!(line.starts_with(message), "{line:?}");
                assert!(
                    line.chars().count() <= 60,
                    "{message}: {line:?} is too wide"
                );
            }
        }
    }

    #[test]
    fn checking_shows_bytes_with_their_unit() {
        let lines = drawn("checking", Some(3 << 20), Unit::Bytes, &[1 << 20]);
        let last = lines.last().expect("drawn");
        assert!(last.contains("1.00 MiB/3.00 MiB"), "{last:?}");
    }
}
