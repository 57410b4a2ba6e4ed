//! Parser for oslo.policy's rule language.
//!
//! Grammar (lowest precedence first): `or`, `and`, `not`, parentheses, and checks. A check is
//! `@` (always), `!` (never), `rule:NAME`, `role:NAME`, or a generic `LEFT:RIGHT` comparing a
//! credential attribute (or a quoted literal) with a value that may interpolate the target as
//! `%(attr)s`. An empty rule always passes, as in oslo.policy. Rules are short, so the parser is
//! a plain recursive descent over whitespace/parenthesis tokens with a nesting limit.

/// A parsed rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    True,
    False,
    Not(Box<Check>),
    And(Vec<Check>),
    Or(Vec<Check>),
    Rule(String),
    Role(String),
    Generic { left: String, right: String },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    #[error("unbalanced parentheses")]
    Unbalanced,
    #[error("expected a check, found {0:?}")]
    Expected(String),
    #[error("unexpected {0:?} after a complete rule")]
    Trailing(String),
    #[error("rule nests more than 64 levels deep")]
    TooDeep,
    #[error("{0:?} is not a check (use @, !, rule:, role: or attribute:value)")]
    BadCheck(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    And,
    Or,
    Not,
    Atom(String),
}

fn tokenize(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    for word in text.split_whitespace() {
        // Parentheses may hug their contents: "(role:a" or "role:b))".
        let mut w = word;
        while let Some(rest) = w.strip_prefix('(') {
            tokens.push(Token::Open);
            w = rest;
        }
        let mut closes = 0;
        while let Some(rest) = w.strip_suffix(')') {
            // "%(x)s" ends in ")s", never in ")", so a trailing ')' is always a parenthesis.
            closes += 1;
            w = rest;
        }
        if !w.is_empty() {
            tokens.push(match w {
                "and" => Token::And,
                "or" => Token::Or,
                "not" => Token::Not,
                other => Token::Atom(other.to_string()),
            });
        }
        tokens.extend(std::iter::repeat_n(Token::Close, closes));
    }
    tokens
}

/// Parses one rule string.
pub fn parse_rule(text: &str) -> Result<Check, ParseError> {
    let tokens = tokenize(text);
    if tokens.is_empty() {
        return Ok(Check::True);
    }
    let mut parser = Parser { tokens, pos: 0 };
    let check = parser.or(0)?;
    match parser.tokens.get(parser.pos) {
        None => Ok(check),
        Some(Token::Close) => Err(ParseError::Unbalanced),
        Some(t) => Err(ParseError::Trailing(format!("{t:?}"))),
    }
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn or(&mut self, depth: usize) -> Result<Check, ParseError> {
        let mut items = vec![self.and(depth)?];
        while self.peek() == Some(&Token::Or) {
            self.pos += 1;
            items.push(self.and(depth)?);
        }
        Ok(if items.len() == 1 {
            items.pop().unwrap_or(Check::False)
        } else {
            Check::Or(items)
        })
    }

    fn and(&mut self, depth: usize) -> Result<Check, ParseError> {
        let mut items = vec![self.unary(depth)?];
        while self.peek() == Some(&Token::And) {
            self.pos += 1;
            items.push(self.unary(depth)?);
        }
        Ok(if items.len() == 1 {
            items.pop().unwrap_or(Check::False)
        } else {
            Check::And(items)
        })
    }

    fn unary(&mut self, depth: usize) -> Result<Check, ParseError> {
        if depth > 64 {
            return Err(ParseError::TooDeep);
        }
        match self.tokens.get(self.pos).cloned() {
            Some(Token::Not) => {
                self.pos += 1;
                Ok(Check::Not(Box::new(self.unary(depth + 1)?)))
            }
            Some(Token::Open) => {
                self.pos += 1;
                let inner = self.or(depth + 1)?;
                if self.peek() != Some(&Token::Close) {
                    return Err(ParseError::Unbalanced);
                }
                self.pos += 1;
                Ok(inner)
            }
            Some(Token::Atom(atom)) => {
                self.pos += 1;
                atom_check(&atom)
            }
            Some(other) => Err(ParseError::Expected(format!("{other:?}"))),
            None => Err(ParseError::Expected("end of rule".into())),
        }
    }
}

fn atom_check(atom: &str) -> Result<Check, ParseError> {
    match atom {
        "@" => return Ok(Check::True),
        "!" => return Ok(Check::False),
        _ => {}
    }
    let Some((kind, value)) = atom.split_once(':') else {
        return Err(ParseError::BadCheck(atom.to_string()));
    };
    Ok(match kind {
        "rule" => Check::Rule(value.to_string()),
        "role" => Check::Role(value.to_string()),
        // Remote HTTP checks would let a policy file make the server call out; refuse them.
        "http" | "https" => return Err(ParseError::BadCheck(atom.to_string())),
        _ => Check::Generic {
            left: kind.to_string(),
            right: value.to_string(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn precedence_and_parentheses() {
        let c = parse_rule("role:a or role:b and not role:c").unwrap();
        assert_eq!(
            c,
            Check::Or(vec![
                Check::Role("a".into()),
                Check::And(vec![
                    Check::Role("b".into()),
                    Check::Not(Box::new(Check::Role("c".into())))
                ])
            ])
        );
        let c = parse_rule("(role:a or role:b) and user_id:%(target.user.id)s").unwrap();
        assert!(matches!(c, Check::And(ref v) if matches!(v[0], Check::Or(_))));
        assert_eq!(parse_rule("((@))").unwrap(), Check::True);
        assert_eq!(parse_rule("  ").unwrap(), Check::True);
    }

    #[test]
    fn malformed_rules_are_errors() {
        for bad in [
            "(role:a",
            "role:a)",
            "role:a or",
            "and role:b",
            "role:a role:b",
            "justaword",
            "not",
            "http://x:y",
        ] {
            assert!(parse_rule(bad).is_err(), "{bad} should not parse");
        }
        let deep = "(".repeat(200) + "@" + &")".repeat(200);
        assert_eq!(parse_rule(&deep), Err(ParseError::TooDeep));
    }

    proptest! {
        /// Fuzz: any string parses or fails cleanly, never panics.
        #[test]
        fn never_panics(s in "\\PC{0,80}") {
            let _ = parse_rule(&s);
        }

        /// Fuzz with the language's own vocabulary, where panics would hide.
        #[test]
        fn never_panics_on_rule_like_text(words in proptest::collection::vec(
            prop_oneof![Just("("), Just(")"), Just("and"), Just("or"), Just("not"), Just("@"), Just("!"),
                        Just("role:admin"), Just("rule:x"), Just("a:%(b)s"), Just("'l':%(x)s")], 0..30)) {
            let text = words.join(" ");
            if let Ok(check) = parse_rule(&text) {
                let p = crate::Policy::new([("x", "@")]).unwrap();
                let mut p2 = p.clone();
                p2.set("r", &text).unwrap();
                let _ = check;
                let _ = p2.enforce("r", &serde_json::json!({"roles": ["admin"]}), &serde_json::json!({"b": 1}));
            }
        }
    }
}
