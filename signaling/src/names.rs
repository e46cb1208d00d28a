//! The one rule for names that people type (display names, guest names, session and
//! community names, group titles), shared by the REST layer and by signaling's
//! `join.display_name`, so that a name refused in one place is refused everywhere.
//!
//! A name is trimmed of surrounding whitespace, then refused when it
//! - is empty or longer than the caller's limit (counted in Unicode scalar values);
//! - holds a control character (`Cc`, e.g. NUL, BEL, newline);
//! - holds a bidirectional control character (U+202A..U+202E embeddings and
//!   overrides, U+2066..U+2069 isolates, U+200E/U+200F marks, U+061C Arabic letter
//!   mark). They are refused, not stripped: they can make a name display as
//!   something else ("Trojan Source" style spoofing), and silently changing what a
//!   person typed would hide that from them;
//! - is made only of invisible characters: whitespace and separators (`Z*`), format
//!   characters (`Cf`: zero-width space/joiners, soft hyphen, word joiner, BOM, tag
//!   characters, ...), combining marks without a base (`Mn`, `Me`: including variation
//!   selectors and the combining grapheme joiner), unassigned code points (`Cn`), the
//!   Hangul fillers (U+115F, U+1160, U+3164, U+FFA0, which are letters by category
//!   but render as nothing) and the Braille blank U+2800.
//!
//! Invisible characters *inside* an otherwise visible name are allowed (zero-width
//! joiners build emoji and some scripts need them).

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// Why a name was refused; [`NameError::message`] words it for a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    /// Empty after trimming, or longer than the limit.
    Length {
        /// The limit, in characters.
        max: usize,
    },
    /// Holds a control character.
    Control,
    /// Holds a bidirectional control character.
    Bidi,
    /// Made only of invisible characters.
    Invisible,
}

impl NameError {
    /// A message for the person who typed the name; `what` names the field.
    pub fn message(&self, what: &str) -> String {
        match self {
            NameError::Length { max } => format!("{what} must be 1 to {max} characters"),
            NameError::Control => format!("{what} may not contain control characters"),
            NameError::Bidi => {
                format!("{what} may not contain bidirectional control characters")
            }
            NameError::Invisible => format!("{what} must contain a visible character"),
        }
    }
}

/// True for the bidirectional formatting characters that can reorder displayed text.
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
    )
}

/// True for characters that show nothing on their own (see the module doc).
pub fn is_invisible(c: char) -> bool {
    if c.is_whitespace() {
        return true;
    }
    if matches!(
        c,
        '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' | '\u{2800}'
    ) {
        return true;
    }
    matches!(
        c.general_category(),
        GeneralCategory::SpaceSeparator
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
            | GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::NonspacingMark
            | GeneralCategory::EnclosingMark
            | GeneralCategory::Unassigned
    )
}

/// Checks a human-entered name against the rule of this module and returns it
/// trimmed. `max` is the longest accepted name, in characters.
pub fn check_name(raw: &str, max: usize) -> Result<&str, NameError> {
    let name = raw.trim();
    let len = name.chars().count();
    if len == 0 || len > max {
        return Err(NameError::Length { max });
    }
    if name.chars().any(char::is_control) {
        return Err(NameError::Control);
    }
    if name.chars().any(is_bidi_control) {
        return Err(NameError::Bidi);
    }
    if name.chars().all(is_invisible) {
        return Err(NameError::Invisible);
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_pass_trimmed() {
        assert_eq!(check_name("  Ada Lovelace ", 80), Ok("Ada Lovelace"));
        assert_eq!(check_name("Zoë", 3), Ok("Zoë"));
        assert_eq!(check_name("李小龍", 80), Ok("李小龍"));
        assert_eq!(check_name("محمد", 80), Ok("محمد"));
        assert_eq!(check_name("한국", 80), Ok("한국"));
        // Joiners inside a visible name are fine (family emoji, Indic conjuncts).
        assert_eq!(
            check_name("👨\u{200D}👩\u{200D}👧", 80),
            Ok("👨\u{200D}👩\u{200D}👧")
        );
        assert_eq!(check_name("e\u{0301}", 80), Ok("e\u{0301}"));
    }

    #[test]
    fn length_is_checked_in_characters() {
        assert_eq!(check_name("", 10), Err(NameError::Length { max: 10 }));
        assert_eq!(check_name(" \t ", 10), Err(NameError::Length { max: 10 }));
        assert_eq!(
            check_name("abcdefghijk", 10),
            Err(NameError::Length { max: 10 })
        );
        assert_eq!(check_name("ëëëëëëëëëë", 10), Ok("ëëëëëëëëëë"));
    }

    #[test]
    fn control_characters_are_refused() {
        assert_eq!(check_name("a\u{0007}b", 10), Err(NameError::Control));
        assert_eq!(check_name("a\nb", 10), Err(NameError::Control));
        assert_eq!(check_name("a\u{0085}b", 10), Err(NameError::Control));
    }

    #[test]
    fn bidi_controls_are_refused_anywhere() {
        for c in [
            '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}',
            '\u{2068}', '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}',
        ] {
            assert_eq!(
                check_name(&format!("Dr {c}kcid"), 80),
                Err(NameError::Bidi),
                "{:04X}",
                c as u32
            );
            assert_eq!(check_name(&c.to_string(), 80), Err(NameError::Bidi));
        }
    }

    #[test]
    fn invisible_only_names_are_refused() {
        for name in [
            "\u{200B}",                 // zero-width space
            "\u{200B}\u{200C}\u{200D}", // zero-width space, non-joiner, joiner
            "\u{2060}\u{FEFF}",         // word joiner, BOM
            "\u{00AD}",                 // soft hyphen
            "\u{3164}",                 // Hangul filler
            "\u{115F}\u{1160}",         // Hangul choseong/jungseong fillers
            "\u{FFA0}",                 // halfwidth Hangul filler
            "\u{2800}\u{2800}",         // Braille blank
            "\u{0301}\u{0308}",         // combining marks alone
            "\u{034F}",                 // combining grapheme joiner
            "\u{FE0F}",                 // variation selector
            "\u{E0041}\u{E0042}",       // tag characters
            "\u{180E}",                 // Mongolian vowel separator
            "\u{3000}\u{200B}\u{3000}", // ideographic spaces around a ZWSP
            "\u{20DD}",                 // enclosing circle alone
        ] {
            assert_eq!(
                check_name(name, 80),
                Err(NameError::Invisible),
                "{:?}",
                name.chars().map(|c| c as u32).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn messages_name_the_field() {
        assert_eq!(
            NameError::Invisible.message("name"),
            "name must contain a visible character"
        );
        assert_eq!(
            NameError::Length { max: 80 }.message("title"),
            "title must be 1 to 80 characters"
        );
    }
}
