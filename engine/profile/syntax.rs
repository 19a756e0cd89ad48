//! Value syntaxes of the profile language (`MACAddress`, `Integer:1,2,3`, `String:a,b`,
//! `Regex:<pattern>`) compiled into validation rules with a human message.

use regex::Regex;

/// A compiled validation rule.
#[derive(Clone, Debug)]
pub struct Rule {
    kind: RuleKind,
    pattern: String,
    message: String,
}

#[derive(Clone, Debug)]
enum RuleKind {
    Integers(Vec<i64>),
    MacAddress,
    Pattern(Regex),
    Strings(Vec<String>),
}

impl Rule {
    /// Parses a syntax string; `Err` carries a human reason.
    pub fn parse(syntax: &str) -> Result<Rule, String> {
        if syntax == "MACAddress" {
            return Ok(Rule {
                kind: RuleKind::MacAddress,
                pattern: "^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$".into(),
                message: "Valid MAC address: six hexadecimal octets separated by ':' or '-', \
                          e.g. 00:1A:2B:3C:4D:5E"
                    .into(),
            });
        }
        if let Some(list) = syntax.strip_prefix("Integer:") {
            let mut values = Vec::new();
            for item in list.split(',') {
                let item = item.trim();
                let value = item
                    .parse::<i64>()
                    .map_err(|_| format!("`{item}` in `{syntax}` is not an integer"))?;
                values.push(value);
            }
            let shown: Vec<String> = values.iter().map(i64::to_string).collect();
            return Ok(Rule {
                pattern: format!("^({}){{1}}$", shown.join("|")),
                message: format!("Valid integer values: {}", shown.join(",")),
                kind: RuleKind::Integers(values),
            });
        }
        if let Some(list) = syntax.strip_prefix("String:") {
            let values: Vec<String> = list.split(',').map(str::to_owned).collect();
            if values.iter().any(String::is_empty) {
                return Err(format!("`{syntax}` has an empty value"));
            }
            return Ok(Rule {
                pattern: format!(
                    "^({}){{1}}$",
                    values
                        .iter()
                        .map(|v| regex::escape(v))
                        .collect::<Vec<_>>()
                        .join("|")
                ),
                message: format!("Valid values: {}", values.join(",")),
                kind: RuleKind::Strings(values),
            });
        }
        if let Some(pattern) = syntax.strip_prefix("Regex:") {
            // Anchored: a rule checks the whole value, not a substring of it.
            let anchored = format!("^(?:{pattern})$");
            let regex = Regex::new(&anchored).map_err(|e| format!("bad regex `{pattern}`: {e}"))?;
            return Ok(Rule {
                kind: RuleKind::Pattern(regex),
                message: format!("Value must match {pattern}"),
                pattern: anchored,
            });
        }
        Err(format!(
            "unknown syntax `{syntax}` (expected MACAddress, Integer:a,b,..., String:a,b,... or \
             Regex:<pattern>)"
        ))
    }

    /// Whether `value` satisfies the rule.
    pub fn accepts(&self, value: &str) -> bool {
        match &self.kind {
            RuleKind::MacAddress => is_mac_address(value),
            RuleKind::Integers(values) => value
                .parse::<i64>()
                .map(|v| values.contains(&v))
                .unwrap_or(false),
            RuleKind::Strings(values) => values.iter().any(|v| v == value),
            RuleKind::Pattern(regex) => regex.is_match(value),
        }
    }

    /// The human message shown when a value is refused.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// A regular expression equivalent to the rule (the seed's `validationPattern`).
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The allowed values of an enumerated rule, if it is one.
    pub fn allowed_values(&self) -> Option<Vec<String>> {
        match &self.kind {
            RuleKind::Integers(v) => Some(v.iter().map(i64::to_string).collect()),
            RuleKind::Strings(v) => Some(v.clone()),
            _ => None,
        }
    }
}

fn is_mac_address(value: &str) -> bool {
    let bytes = value.as_bytes();
    if bytes.len() != 17 {
        return false;
    }
    let separator = bytes[2];
    if separator != b':' && separator != b'-' {
        return false;
    }
    bytes.iter().enumerate().all(|(i, &b)| {
        if i % 3 == 2 {
            b == separator
        } else {
            b.is_ascii_hexdigit()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_address() {
        let rule = Rule::parse("MACAddress").unwrap();
        assert!(rule.accepts("00:1A:2B:3C:4D:5E"));
        assert!(rule.accepts("00-1a-2b-3c-4d-5e"));
        assert!(!rule.accepts("00:1A:2B:3C:4D"));
        assert!(!rule.accepts("00:1A-2B:3C:4D:5E"), "mixed separators");
        assert!(!rule.accepts("00:1A:2B:3C:4D:5G"));
        assert!(!rule.accepts(""));
        let pattern = Regex::new(rule.pattern()).unwrap();
        assert!(pattern.is_match("00:1A:2B:3C:4D:5E"));
    }

    #[test]
    fn integers_give_the_seed_message_and_pattern() {
        let rule = Rule::parse("Integer:1,2,3").unwrap();
        assert_eq!(rule.message(), "Valid integer values: 1,2,3");
        assert_eq!(rule.pattern(), "^(1|2|3){1}$");
        assert!(rule.accepts("2"));
        assert!(!rule.accepts("4"));
        assert!(!rule.accepts("1.0"));
        assert!(Rule::parse("Integer:1,x").is_err());
    }

    #[test]
    fn strings_are_exact() {
        let rule = Rule::parse("String:Aircraft,Surface Vehicle").unwrap();
        assert!(rule.accepts("Surface Vehicle"));
        assert!(!rule.accepts("surface vehicle"));
        assert!(!rule.accepts("Aircraft,Surface Vehicle"));
        assert!(Regex::new(rule.pattern())
            .unwrap()
            .is_match("Surface Vehicle"));
    }

    #[test]
    fn regex_is_anchored() {
        let rule = Rule::parse("Regex:[A-Z]{3}[0-9]+").unwrap();
        assert!(rule.accepts("ABC123"));
        assert!(!rule.accepts("xABC123"));
        assert!(Rule::parse("Regex:(").is_err());
        assert!(Rule::parse("Float").is_err());
    }
}
