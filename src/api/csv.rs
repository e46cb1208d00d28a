//! CSV output (RFC 4180): a field is quoted when it holds a comma, a quote, a line
//! break or leading/trailing blanks, with quotes doubled; rows end in CRLF. A field
//! a spreadsheet would run as a formula (first character `=`, `+`, `-`, `@`, tab or
//! carriage return) gets a leading `'`, so an exported audit row cannot carry a
//! formula into the administrator's spreadsheet.

/// One field, escaped.
pub fn field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    let quote =
        value.contains([',', '"', '\n', '\r']) || value.starts_with(' ') || value.ends_with(' ');
    if quote {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

/// One row of fields, escaped, with its CRLF.
pub fn row<S: AsRef<str>>(fields: &[S]) -> String {
    let mut line = fields
        .iter()
        .map(|f| field(f.as_ref()))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_fields_stay_as_they_are() {
        assert_eq!(field("schedule.note.create"), "schedule.note.create");
        assert_eq!(field(""), "");
        assert_eq!(row(&["a", "b", ""]), "a,b,\r\n");
    }

    #[test]
    fn separators_quotes_and_line_breaks_are_quoted() {
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field(r#"{"k":"v"}"#), r#""{""k"":""v""}""#);
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
        assert_eq!(field("cr\rlf"), "\"cr\rlf\"");
        assert_eq!(field(" padded "), "\" padded \"");
        assert_eq!(row(&["x", "say \"hi\""]), "x,\"say \"\"hi\"\"\"\r\n");
    }

    #[test]
    fn formulas_are_neutralized() {
        assert_eq!(field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(field("+1"), "'+1");
        assert_eq!(field("-2"), "'-2");
        assert_eq!(field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(field("\tx"), "'\tx");
    }
}
