//! Text read from a module or a trace (function, file and module names,
//! messages) made safe for a terminal: the one rule, used by the collector
//! for the trap stacks it writes into a run's message and by the viewer
//! (`heapscope_viewer::escape`) for everything it prints.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether a terminal must not get `c` raw: a control character (C0, DEL,
/// C1: ESC, BEL, CR, newline, NUL...) or a bidirectional override or
/// isolate, which reorders what follows it on the line.
pub fn terminal_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// `s` safe to print on a terminal: control characters (ESC, BEL, CR,
/// newlines, NUL, C1) and bidirectional overrides are escaped as `\x1b`
/// and `\u{202e}`, so a hostile name can neither move the cursor, retitle
/// the window, link, nor reorder or forge report lines. Everything else is
/// printed as it is, so applying it twice changes nothing more.
pub fn terminal(s: &str) -> Cow<'_, str> {
    if !s.chars().any(terminal_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push_terminal(&mut out, c);
    }
    Cow::Owned(out)
}

/// [`terminal`] for a message of several lines: its newlines are kept,
/// every other control character is escaped.
pub fn terminal_lines(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c != '\n' && terminal_unsafe(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c == '\n' {
            out.push(c);
        } else {
            push_terminal(&mut out, c);
        }
    }
    Cow::Owned(out)
}

fn push_terminal(out: &mut String, c: char) {
    if !terminal_unsafe(c) {
        out.push(c);
    } else if (c as u32) < 0x80 {
        let _ = write!(out, "\\x{:02x}", c as u32);
    } else {
        let _ = write!(out, "\\u{{{:x}}}", c as u32);
    }
}
