//! Every string read from a module or a trace — function, file and module
//! names, trap and invocation messages, suppression rule names, paths — is
//! untrusted: it may hold markup, Markdown, terminal escape sequences, or
//! characters an XML document cannot hold. Each kind of output has one
//! function here that makes such a string safe for it, and every renderer
//! calls it:
//!
//! | output | function | what it does |
//! | --- | --- | --- |
//! | SVG, HTML, JUnit XML text and attribute values | [`xml`] | `&<>"'` as references, [`xml_chars`] |
//! | text a library escapes itself (inferno, askama) | [`xml_chars`] | the characters XML 1.0 forbids become U+FFFD |
//! | terminal and log lines | [`terminal`] | control characters and bidi overrides as `\x1b`, `\u{202e}` |
//! | Markdown text (GitHub step summary) | [`markdown`] | [`terminal`], then Markdown's and HTML's specials escaped |
//! | inline code in a Markdown table | [`markdown_table_code`] | [`terminal`], no backtick, `\|` |
//! | a fenced Markdown code block | [`markdown_block`] | [`terminal`] per line, no fence |
//!
//! Each returns its input unchanged for an ordinary name (letters, digits,
//! `::`, `<T>` and the like outside markup outputs), so a report of a
//! well-behaved module reads exactly as before.

use std::borrow::Cow;

/// Whether XML 1.0 forbids `c` in a document: the C0 controls other than
/// tab, newline and carriage return, and the noncharacters U+FFFE and
/// U+FFFF. (Surrogates cannot occur in a Rust string.)
pub fn xml_forbidden(c: char) -> bool {
    matches!(
        c,
        '\0'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}'
    )
}

/// `s` with each character XML 1.0 forbids replaced by U+FFFD, for text
/// handed to a writer that escapes markup itself (inferno's SVG, askama's
/// HTML): the document it writes is then well-formed.
pub fn xml_chars(s: &str) -> Cow<'_, str> {
    if !s.chars().any(xml_forbidden) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| if xml_forbidden(c) { '\u{fffd}' } else { c })
            .collect(),
    )
}

/// `s` as XML or HTML text or attribute value: `&`, `<`, `>`, `"` and `'`
/// as references and the characters XML 1.0 forbids replaced by U+FFFD.
pub fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if xml_forbidden(c) => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

// The terminal's rule lives in the trace crate, where the collector uses
// it for the trap stacks it writes into a run's message.
pub use heapscope_trace::text::{terminal, terminal_lines};

/// `s` as Markdown text (a heading, a list item, a table cell): control
/// characters made visible as [`terminal`] does (a newline cannot start a
/// block or a table row), Markdown's punctuation backslash-escaped (no
/// image, link, emphasis, code span, heading or cell break: `![x](url)`
/// reads as those characters) and HTML's `<`, `>`, `&` as references.
pub fn markdown(s: &str) -> String {
    let s = terminal(s);
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' | '!' | '[' | ']' | '(' | ')' | '*' | '_' | '`' | '#' | '|' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            c => out.push(c),
        }
    }
    no_autolinks(out)
}

/// GitHub's Markdown makes a link of a bare `scheme://…` or `www.…`
/// without any markup: a zero-width space after the scheme's colon and
/// after `www` leaves the text as it reads but makes it no link.
fn no_autolinks(s: String) -> String {
    if !s.contains("://") && !s.to_ascii_lowercase().contains("www.") {
        return s;
    }
    let mut out = String::with_capacity(s.len() + 8);
    let mut rest = s.as_str();
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("://") {
            out.push_str(":\u{200b}");
            rest = &rest[1..];
            continue;
        }
        if rest.len() >= 4 && rest.is_char_boundary(4) && rest[..4].eq_ignore_ascii_case("www.") {
            out.push_str(&rest[..3]);
            out.push('\u{200b}');
            rest = &rest[3..];
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// `s` inside an inline code span in a Markdown table cell (`` `--max-peak` ``):
/// a code span shows backslashes and references literally, so only what
/// would end it is changed: a backtick becomes `'`, a pipe `\|` (GitHub's
/// tables take that as a pipe in a cell), control characters as
/// [`terminal`] shows them.
pub fn markdown_table_code(s: &str) -> String {
    terminal(s).replace('`', "'").replace('|', "\\|")
}

/// `s` as the body of a fenced Markdown code block: its lines kept, other
/// control characters as [`terminal`] shows them, and no line of it can
/// close the fence (` ``` ` becomes `'''`).
pub fn markdown_block(s: &str) -> String {
    terminal_lines(s).replace("```", "'''")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_are_unchanged() {
        for name in ["main", "alloc::vec::Vec<T>::push", "grow_buffer (app.c:12)"] {
            assert!(matches!(xml_chars(name), Cow::Borrowed(_)), "{name}");
            assert!(matches!(terminal(name), Cow::Borrowed(_)), "{name}");
        }
        assert_eq!(xml_chars("tab\there"), "tab\there");
        assert_eq!(xml("a_b::c"), "a_b::c");
    }

    #[test]
    fn xml_has_no_forbidden_character_and_no_markup() {
        assert_eq!(
            xml("<a href='x'>\u{fffe}\u{ffff}\u{1b}\u{7}\t\n\r&</a>"),
            "&lt;a href=&#39;x&#39;&gt;\u{fffd}\u{fffd}\u{fffd}\u{fffd}\t\n\r&amp;&lt;/a&gt;"
        );
        assert_eq!(
            xml_chars("a\u{0}b\u{1f}c\u{7f}d"),
            "a\u{fffd}b\u{fffd}c\u{7f}d"
        );
    }

    #[test]
    fn markdown_makes_no_link_of_a_bare_url() {
        assert_eq!(
            markdown("see https://evil.example/x and WWW.evil.example"),
            "see https:\u{200b}//evil.example/x and WWW\u{200b}.evil.example"
        );
        assert_eq!(markdown("a::b"), "a::b");
    }

    #[test]
    fn terminal_shows_control_characters_and_is_idempotent() {
        let s = "clear\u{1b}[2J\u{7}bell\nline\u{202e}rtl\u{9b}csi";
        let once = terminal(s).into_owned();
        assert_eq!(
            once,
            "clear\\x1b[2J\\x07bell\\x0aline\\u{202e}rtl\\u{9b}csi"
        );
        assert_eq!(terminal(&once), once);
        assert_eq!(terminal_lines("a\u{1b}\nb"), "a\\x1b\nb");
    }

    #[test]
    fn markdown_has_no_image_link_or_raw_control() {
        assert_eq!(
            markdown("![img](http://x) [a](b) <b>*_`#|~\\&\u{1b}\u{7}\n"),
            "\\!\\[img\\]\\(http:\u{200b}//x\\) \\[a\\]\\(b\\) &lt;b&gt;\\*\\_\\`\\#\\|\\~\\\\&amp;\\\\x1b\\\\x07\\\\x0a"
        );
        assert_eq!(
            markdown("max-peak: 1,024 > 512"),
            "max-peak: 1,024 &gt; 512"
        );
        assert_eq!(markdown_table_code("a`b|c\u{1b}"), "a'b\\|c\\x1b");
        assert_eq!(markdown_block("x\n```\n\u{7}"), "x\n'''\n\\x07");
    }
}
