//! A progress bar on stderr, shown only when stderr is a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// A progress bar that draws on stderr when it is a terminal, and is a no-op otherwise.
#[derive(Debug, Clone)]
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar with `message`, of `len` steps when known (a counter otherwise). Hidden when
    /// `enabled` is false or stderr is not a terminal.
    pub fn new(enabled: bool, message: &str, len: Option<u64>) -> Progress {
        if !enabled || !std::io::stderr().is_terminal() {
            return Progress::hidden();
        }
        let bar = ProgressBar::with_draw_target(len, ProgressDrawTarget::stderr());
        let template = if len.is_some() {
            "{msg} [{bar:30}] {human_pos}/{human_len} ({per_sec}, {eta})"
        } else {
            "{msg} {spinner} {human_pos} ({per_sec})"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
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

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
