//! Checks the function reference in `docs/language.md` against the table: every function
//! has exactly one entry and every entry a function; operands and aliases agree; and every
//! `Example:` evaluates to the text after `→`.
//!
//! The examples use only literals and functions, so a tiny prefix evaluator here (the
//! same rules as the real one: arity from the table, `EmptyRule::Propagate` applied before
//! the call) computes them.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::lang::function::{CallCx, EmptyRule, Function, Operand};
use crate::lang::value::{parse_number, Reason, Value};

const DOCS: &str = include_str!("../../../docs/language.md");
const MARKER: &str = "FUNCTIONS: everything below this line";

/// One `### NAME` entry of the reference.
struct Entry {
    signature: String,
    description: Vec<String>,
    example: Option<String>,
}

fn entries() -> BTreeMap<String, Entry> {
    let start = DOCS.find(MARKER).expect("the FUNCTIONS marker line");
    let mut out = BTreeMap::new();
    let mut current: Option<(String, Entry)> = None;
    for line in DOCS[start..].lines() {
        if let Some(name) = line.strip_prefix("### ") {
            if let Some((n, e)) = current.take() {
                assert!(out.insert(n.clone(), e).is_none(), "{n} documented twice");
            }
            let entry = Entry {
                signature: String::new(),
                description: Vec::new(),
                example: None,
            };
            current = Some((name.trim().to_string(), entry));
        } else if line.starts_with("## ") {
            if let Some((n, e)) = current.take() {
                assert!(out.insert(n.clone(), e).is_none(), "{n} documented twice");
            }
        } else if let Some((_, e)) = current.as_mut() {
            if let Some(rest) = line.strip_prefix("Operands: ") {
                e.signature = rest.to_string();
            } else if let Some(rest) = line.strip_prefix("Example: ") {
                e.example = Some(rest.to_string());
            } else if !line.trim().is_empty() && !e.signature.is_empty() {
                e.description.push(line.to_string());
            }
        }
    }
    if let Some((n, e)) = current.take() {
        assert!(out.insert(n.clone(), e).is_none(), "{n} documented twice");
    }
    out
}

/// The `Operands:` line the table implies.
fn signature(f: &Function) -> String {
    let ops: Vec<&str> = f
        .operands
        .iter()
        .map(|o| match o {
            Operand::N => "N",
            Operand::S => "S",
            Operand::A => "A",
            Operand::T => "T",
            Operand::Any => "any",
            Operand::Output => "@name",
        })
        .collect();
    let ops = if ops.is_empty() {
        "none".to_string()
    } else {
        format!("`{}`", ops.join(" "))
    };
    let aliases = if f.aliases.is_empty() {
        "none".to_string()
    } else {
        let quoted: Vec<String> = f.aliases.iter().map(|a| format!("`{a}`")).collect();
        quoted.join(", ")
    };
    format!("{ops} · Result: {{}} · Aliases: {aliases}")
}

#[test]
fn every_function_has_one_entry_and_every_entry_a_function() {
    let docs = entries();
    let code: Vec<&str> = super::all().map(|f| f.name).collect();
    for name in &code {
        assert!(docs.contains_key(*name), "{name} has no ### entry in docs");
    }
    for name in docs.keys() {
        assert!(
            code.contains(&name.as_str()),
            "### {name} is not a function"
        );
    }
    let mut unique = code.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), code.len(), "a function name is used twice");
}

#[test]
fn every_entry_has_operands_description_and_example() {
    let docs = entries();
    for f in super::all() {
        let Some(entry) = docs.get(f.name) else {
            continue; // reported by the test above
        };
        let expected = signature(f);
        let (before, after) = expected.split_once("{}").expect("placeholder");
        let sig = &entry.signature;
        assert!(
            sig.starts_with(before) && sig.ends_with(after),
            "{}: `Operands: {sig}` should read `Operands: {expected}` ({{}} = the result kind)",
            f.name
        );
        let result = &sig[before.len()..sig.len() - after.len()];
        assert!(
            ["N", "S", "A", "T", "any"].contains(&result),
            "{}: result kind {result:?}",
            f.name
        );
        assert!(!entry.description.is_empty(), "{}: no description", f.name);
        assert!(entry.example.is_some(), "{}: no Example: line", f.name);
    }
}

#[test]
fn every_example_gives_its_documented_result() {
    for (name, entry) in entries() {
        let Some(example) = entry.example else {
            continue;
        };
        let (equation, result) = parse_example(&example)
            .unwrap_or_else(|| panic!("{name}: Example: {example} is not `EQ` → `RESULT`"));
        assert!(
            equation.split_whitespace().next().is_some(),
            "{name}: empty example"
        );
        let got = evaluate(equation).unwrap_or_else(|e| panic!("{name}: {equation}: {e}"));
        assert_eq!(got, result, "{name}: {equation}");
    }
}

/// `` `EQUATION` → `RESULT` ``.
fn parse_example(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('`')?;
    let (equation, rest) = rest.split_once("` → `")?;
    let result = rest.strip_suffix('`')?;
    Some((equation, result))
}

/// Evaluates a literal-only equation and prints the result as recalcd does.
fn evaluate(equation: &str) -> Result<String, String> {
    let tokens = tokenize(equation)?;
    let mut pos = 0;
    let mut cx = CallCx::new(42);
    let v = eval(&tokens, &mut pos, &mut cx)?;
    if pos != tokens.len() {
        return Err(format!("{} tokens left over", tokens.len() - pos));
    }
    Ok(match v {
        Value::Empty(_) => "(empty)".to_string(),
        other => other.to_string(),
    })
}

enum Token {
    Lit(Value),
    Name(String),
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() || c == '(' || c == ')' {
            chars.next();
        } else if c == '\'' {
            chars.next();
            let mut s = String::new();
            loop {
                match chars.next() {
                    Some('\'') if chars.peek() == Some(&'\'') => {
                        chars.next();
                        s.push('\'');
                    }
                    Some('\'') => break,
                    Some(ch) => s.push(ch),
                    None => return Err("unterminated string".into()),
                }
            }
            out.push(Token::Lit(Value::str(s)));
        } else {
            let mut word = String::new();
            while let Some(&ch) = chars.peek() {
                if ch.is_whitespace() || ch == '(' || ch == ')' {
                    break;
                }
                word.push(ch);
                chars.next();
            }
            out.push(if let Some(x) = parse_number(&word) {
                Token::Lit(Value::Num(x))
            } else if let Some(name) = word.strip_prefix('@') {
                Token::Lit(Value::str(name))
            } else if word.eq_ignore_ascii_case("#NULL") {
                Token::Lit(Value::Empty(Reason::Missing(Arc::from("#NULL"))))
            } else {
                Token::Name(word)
            });
        }
    }
    Ok(out)
}

fn eval(tokens: &[Token], pos: &mut usize, cx: &mut CallCx) -> Result<Value, String> {
    let token = tokens.get(*pos).ok_or("missing operand")?;
    *pos += 1;
    match token {
        Token::Lit(v) => Ok(v.clone()),
        Token::Name(name) => {
            let f = super::find(name).ok_or(format!("unknown function {name}"))?;
            let mut ops = Vec::with_capacity(f.operands.len());
            for _ in f.operands {
                ops.push(eval(tokens, pos, cx)?);
            }
            if f.empty == EmptyRule::Propagate {
                if let Some(e) = ops.iter().find(|v| v.is_empty()) {
                    return Ok(e.clone());
                }
            }
            Ok((f.imp)(&ops, cx))
        }
    }
}

#[test]
fn the_example_evaluator_works() {
    assert_eq!(evaluate("+ 1 * 2 3").as_deref(), Ok("7"));
    assert_eq!(evaluate("( / 1 0 )").as_deref(), Ok("(empty)"));
    assert_eq!(evaluate("IF 1 'it''s' 0").as_deref(), Ok("it's"));
    assert!(evaluate("+ 1").is_err());
    assert!(evaluate("+ 1 2 3").is_err());
}

/// Every function name and alias the language defines (`docs/language.md`), so that a
/// function cannot go missing unnoticed.
const SPEC_NAMES: &[&str] = &[
    "+", "ADD", "-", "SUB", "*", "MUL", "/", "DIV", "ABS", "MOD", "MAX", "MIN", "AND", "OR", "SHL",
    "SHR", "=", "EQ", ">", "GT", ">=", "GET", "<", "LT", "<=", "LET", "EQS", "POW", "IF", "INR",
    "TOR", "IFNN", "IFNA", "ISN", "ISA", "DDIF", "DADD", "DWEEK", "GPSDIF", "GPSST", "ADDS", "S",
    "GOTH", "ROUND", "ROUNDX", "ENUM", "TOE", "TABLE", "RND", "RNDN", "TRANS", "HILO", "HIHO",
    "HIIX", "SNRM", "SMED", "SMIN", "SMAX", "SSUM", "SSUMX", "SSUMN", "SBEG", "SEND", "SBEGN",
    "SENDN", "SBEGNR", "SENDNR", "SSUMD", "SSUMP", "SSUMM", "SCNT", "SCNT0", "SCNTS", "SCNTNR",
    "SDATCTRL", "SLIST", "SA", "VSEL", "VISR", "VAND", "VOR", "VNOT", "VBEX", "VLAD", "VBEG",
    "VEND", "VIDX", "VMID", "VNUM", "VMUL", "VDIV", "VADD", "VMULC", "VADDC", "VSHIFT", "VSSS",
    "VT", "VA", "VAN", "HIST", "HIST2", "HISTIF", "HISTS", "HISTD",
];

#[test]
fn every_spec_function_exists_and_nothing_else() {
    for name in SPEC_NAMES {
        assert!(
            super::find(name).is_some(),
            "SPEC function {name} is missing"
        );
        assert!(
            super::find(&name.to_lowercase()).is_some(),
            "{name} in lower case"
        );
    }
    let spellings = super::all().map(|f| 1 + f.aliases.len()).sum::<usize>();
    assert_eq!(
        spellings,
        SPEC_NAMES.len(),
        "names and aliases beyond the SPEC"
    );
    assert_eq!(super::all().count(), 95);
}

#[test]
fn empty_rules_match_the_spec() {
    let accept: Vec<&str> = super::all()
        .filter(|f| f.empty == EmptyRule::Accept)
        .map(|f| f.name)
        .collect();
    let expected = [
        "IF", "IFNN", "IFNA", "ISN", "ISA", "HIST", "HIST2", "HISTIF", "SBEGNR", "SENDNR", "SCNT0",
        "SCNTS",
    ];
    for name in expected {
        assert!(
            accept.contains(&name),
            "{name} should accept empty operands"
        );
    }
    assert_eq!(accept.len(), expected.len(), "{accept:?}");
}
