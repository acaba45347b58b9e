//! Parser of the free-text options field of a Jeedom command (`file=... description="..."`).
use std::fmt;

/// What the options string asks for.
#[derive(Debug, Default, PartialEq)]
pub struct Options {
    /// Files to attach (`file=`), in order.
    pub files: Vec<String>,
    /// Caption of the file(s).
    pub description: Option<String>,
}

/// Why an options string was refused.
#[derive(Debug, PartialEq)]
pub enum OptionsError {
    /// A quote opened at this character position is never closed.
    UnterminatedQuote(usize),
    /// A word without `=` or `:`.
    NotKeyValue(String),
}

impl fmt::Display for OptionsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptionsError::UnterminatedQuote(at) => {
                write!(f, "unterminated quote at character {at}")
            }
            OptionsError::NotKeyValue(w) => write!(f, "\"{w}\" is not key=value"),
        }
    }
}

/// Parses `key=value key:value key="quoted value" key='single'`; unknown keys
/// are ignored so that Jeedom can grow new ones.
pub fn parse(input: &str) -> Result<Options, OptionsError> {
    let mut out = Options::default();
    for (key, value) in pairs(input)? {
        match key.to_ascii_lowercase().as_str() {
            "file" | "files" => out.files.extend(split_files(&value)),
            "description" | "caption" => out.description = Some(value),
            _ => {}
        }
    }
    Ok(out)
}

/// Several files may be given in one value, separated by commas.
fn split_files(value: &str) -> impl Iterator<Item = String> + '_ {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

fn pairs(input: &str) -> Result<Vec<(String, String)>, OptionsError> {
    let chars: Vec<char> = input.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && !chars[i].is_whitespace() && chars[i] != '=' && chars[i] != ':' {
            i += 1;
        }
        let key: String = chars[start..i].iter().collect();
        if i >= chars.len() || chars[i].is_whitespace() {
            return Err(OptionsError::NotKeyValue(key));
        }
        let (value, next) = value_at(&chars, i + 1)?;
        out.push((key, value));
        i = next;
    }
    Ok(out)
}

/// Reads a value starting at `i`: quoted (quotes removed) or up to a space.
fn value_at(chars: &[char], i: usize) -> Result<(String, usize), OptionsError> {
    match chars.get(i) {
        Some(&q) if q == '"' || q == '\'' => {
            let end = chars[i + 1..]
                .iter()
                .position(|&c| c == q)
                .ok_or(OptionsError::UnterminatedQuote(i))?;
            Ok((chars[i + 1..i + 1 + end].iter().collect(), i + end + 2))
        }
        _ => {
            let end = chars[i..]
                .iter()
                .position(|c| c.is_whitespace())
                .map_or(chars.len(), |p| i + p);
            Ok((chars[i..end].iter().collect(), end))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_path_with_spaces_and_description() {
        let o = parse(r#"file="/a b.jpg" description="my cam""#).unwrap();
        assert_eq!(o.files, ["/a b.jpg"]);
        assert_eq!(o.description.as_deref(), Some("my cam"));
    }

    #[test]
    fn unquoted_values_and_single_quotes() {
        let o = parse("file=/tmp/snap.jpg description='front door'").unwrap();
        assert_eq!(o.files, ["/tmp/snap.jpg"]);
        assert_eq!(o.description.as_deref(), Some("front door"));
    }

    #[test]
    fn colon_form_and_several_files() {
        let o = parse("file:/a.jpg file=/b.jpg,/c.jpg description:cams").unwrap();
        assert_eq!(o.files, ["/a.jpg", "/b.jpg", "/c.jpg"]);
        assert_eq!(o.description.as_deref(), Some("cams"));
    }

    #[test]
    fn unknown_keys_are_ignored() {
        let o = parse("color=red file=/x.png priority=\"very high\"").unwrap();
        assert_eq!(
            o,
            Options {
                files: vec!["/x.png".into()],
                description: None
            }
        );
    }

    #[test]
    fn empty_string_is_empty_options() {
        assert_eq!(parse("").unwrap(), Options::default());
        assert_eq!(parse("   ").unwrap(), Options::default());
    }

    #[test]
    fn unterminated_quote_is_an_error() {
        assert_eq!(
            parse("file=\"/a b.jpg"),
            Err(OptionsError::UnterminatedQuote(5))
        );
        assert!(parse("description='oops")
            .unwrap_err()
            .to_string()
            .contains("unterminated quote"));
    }

    #[test]
    fn bare_word_is_an_error() {
        assert_eq!(
            parse("file=/a.jpg hello"),
            Err(OptionsError::NotKeyValue("hello".into()))
        );
    }

    #[test]
    fn empty_value_and_unicode() {
        let o = parse("description=\"\" file=/tmp/caméra.jpg").unwrap();
        assert_eq!(o.description.as_deref(), Some(""));
        assert_eq!(o.files, ["/tmp/caméra.jpg"]);
    }
}
