//! InfluxQL as the dashboards write it, with Grafana's variable references in it: one
//! tokenizer ([`Lexed`]) that knows where string literals (`'...'`), quoted identifiers
//! (`"..."`) and regex literals (`/.../` after `=~` or `!~`) begin and end, and the checks
//! built on it: [`query_problems`] (the rules every dashboard query follows) and
//! [`unknown_identifiers`] (names that consumer-influx does not write, from
//! [`consumer_influx::schema`]).
//!
//! Substitution ([`super::substitute`]), masking of literals and the extraction of quoted
//! identifiers all read the same tokens, so they agree on what is inside a literal.

use std::collections::BTreeSet;
use std::ops::Range;

use consumer_influx::schema::Measurement;

/// Where a token is: in code, or inside one of InfluxQL's literals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Context {
    /// Keywords, operators, unquoted names, numbers.
    Code,
    /// Inside `'...'`.
    Str,
    /// Inside `"..."`.
    Ident,
    /// Inside a regex literal `/.../`.
    Regex,
}

impl Context {
    /// The character that ends this literal (none for code).
    fn close(self) -> Option<char> {
        match self {
            Context::Code => None,
            Context::Str => Some('\''),
            Context::Ident => Some('"'),
            Context::Regex => Some('/'),
        }
    }
}

/// A Grafana variable reference: `$name`, `${name}`, `${name:fmt}`, `[[name]]` or
/// `[[name:fmt]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct VarRef {
    /// The variable's name.
    pub name: String,
    /// The format after `:`, e.g. `regex`, `raw`.
    pub fmt: Option<String>,
}

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum TokenKind {
    /// One character of code or of a literal's content.
    Char(char),
    /// Inside a literal, a backslash and the character it escapes (this one).
    Escape(char),
    /// The quote or slash that opens a literal.
    Open,
    /// The quote or slash that closes it.
    Close,
    /// A variable reference, in code or inside a literal. It is one token: its characters
    /// never open or close a literal.
    Var(VarRef),
}

/// One token and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Token {
    /// What it is.
    pub kind: TokenKind,
    /// Where it is; for [`TokenKind::Open`] and [`TokenKind::Close`], the literal's kind.
    pub context: Context,
    /// Its characters, as char indices into the query.
    pub span: Range<usize>,
}

impl Token {
    /// Whether this is part of a literal's content (delimiters are not).
    fn in_literal(&self) -> bool {
        self.context != Context::Code && !matches!(self.kind, TokenKind::Open | TokenKind::Close)
    }
}

/// A query split into tokens.
#[derive(Debug, Clone)]
pub(super) struct Lexed {
    /// The query's characters.
    pub chars: Vec<char>,
    /// Its tokens, in order; their spans cover every character once.
    pub tokens: Vec<Token>,
}

impl Lexed {
    /// Tokenizes `query`. A literal left open runs to the end of the query.
    pub fn new(query: &str) -> Self {
        let chars: Vec<char> = query.chars().collect();
        let mut tokens = Vec::new();
        let mut context = Context::Code;
        // The last two non-blank characters of code: `=~` or `!~` then `/` opens a regex;
        // any other `/` is a division.
        let mut prev = [' ', ' '];
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let (kind, len, at) = if let Some((r, len)) = var_ref(&chars[i..]) {
                if context == Context::Code {
                    prev = ['$', '$'];
                }
                (TokenKind::Var(r), len, context)
            } else if context == Context::Code {
                let opens = match c {
                    '\'' => Some(Context::Str),
                    '"' => Some(Context::Ident),
                    '/' if prev[1] == '~' && matches!(prev[0], '=' | '!') => Some(Context::Regex),
                    _ => None,
                };
                if !c.is_whitespace() {
                    prev = [prev[1], c];
                }
                match opens {
                    Some(literal) => {
                        context = literal;
                        (TokenKind::Open, 1, literal)
                    }
                    None => (TokenKind::Char(c), 1, Context::Code),
                }
            } else if c == '\\' && i + 1 < chars.len() {
                (TokenKind::Escape(chars[i + 1]), 2, context)
            } else if Some(c) == context.close() {
                let literal = context;
                context = Context::Code;
                prev = [' ', c];
                (TokenKind::Close, 1, literal)
            } else {
                (TokenKind::Char(c), 1, context)
            };
            tokens.push(Token {
                kind,
                context: at,
                span: i..i + len,
            });
            i += len;
        }
        Lexed { chars, tokens }
    }

    /// The characters of a token.
    pub fn text(&self, token: &Token) -> &[char] {
        &self.chars[token.span.clone()]
    }

    /// The query with the content of every literal blanked out (same length in chars,
    /// delimiters kept), so keywords and parentheses can be found safely.
    pub fn masked(&self) -> Vec<char> {
        let mut out = self.chars.clone();
        for t in self.tokens.iter().filter(|t| t.in_literal()) {
            out[t.span.clone()].fill(' ');
        }
        out
    }

    /// The variable references, in order.
    pub fn var_refs(&self) -> impl Iterator<Item = &VarRef> {
        self.tokens.iter().filter_map(|t| match &t.kind {
            TokenKind::Var(r) => Some(r),
            _ => None,
        })
    }
}

/// The variable reference at the start of `s`, and its length in chars.
pub(super) fn var_ref(s: &[char]) -> Option<(VarRef, usize)> {
    let is_name = |c: &char| c.is_ascii_alphanumeric() || *c == '_';
    let braced = |open: &[char], close: &[char]| -> Option<(VarRef, usize)> {
        if !s.starts_with(open) {
            return None;
        }
        let rest = &s[open.len()..];
        let end = rest.windows(close.len()).position(|w| w == close)?;
        let inner: String = rest[..end].iter().collect();
        let (name, fmt) = match inner.split_once(':') {
            Some((n, f)) => (n.to_string(), Some(f.to_string())),
            None => (inner, None),
        };
        if name.is_empty() || !name.chars().all(|c| is_name(&c)) {
            return None;
        }
        Some((VarRef { name, fmt }, open.len() + end + close.len()))
    };
    match s.first()? {
        '$' if s.get(1) == Some(&'{') => braced(&['$', '{'], &['}']),
        '$' => {
            let n = s[1..].iter().take_while(|c| is_name(c)).count();
            let name = s[1..=n].iter().collect();
            (n > 0).then_some((VarRef { name, fmt: None }, n + 1))
        }
        '[' => braced(&['[', '['], &[']', ']']),
        _ => None,
    }
}

/// `query` with the content of its literals blanked out (see [`Lexed::masked`]).
fn mask_literals(query: &str) -> Vec<char> {
    Lexed::new(query).masked()
}

/// The SELECT statements of a query, outermost first: each as (masked text with its
/// subqueries blanked out, original text of the same span).
fn statements(query: &str) -> Vec<(String, String)> {
    let masked = mask_literals(query);
    let original: Vec<char> = query.chars().collect();
    let upper: Vec<char> = masked.iter().map(|c| c.to_ascii_uppercase()).collect();
    // Spans of parenthesised subqueries: "(" followed (after blanks) by SELECT.
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for (i, c) in upper.iter().enumerate() {
        if *c != '(' {
            continue;
        }
        let j = i
            + 1
            + upper[i + 1..]
                .iter()
                .take_while(|c| c.is_whitespace())
                .count();
        let word: String = upper[j..].iter().take(6).collect();
        if word != "SELECT" {
            continue;
        }
        let mut depth = 0usize;
        for (k, c) in upper.iter().enumerate().skip(i) {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        spans.push((i, k));
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    let statement = |start: usize, end: usize| -> (String, String) {
        // Blank out the subqueries directly inside [start, end].
        let mut text: Vec<char> = masked[start..=end].to_vec();
        for &(s, e) in &spans {
            if s > start && e < end && !(s == start && e == end) {
                for c in &mut text[s - start..=e - start] {
                    *c = ' ';
                }
            }
        }
        (
            text.into_iter().collect(),
            original[start..=end].iter().collect(),
        )
    };
    let mut out = vec![statement(0, masked.len().saturating_sub(1))];
    for &(s, e) in &spans {
        out.push(statement(s + 1, e - 1));
    }
    out
}

/// Whether `word(` (case-insensitive, as a whole word) occurs in `text`.
fn calls(text: &str, word: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(pos) = lower[from..].find(word) {
        let at = from + pos;
        let before_ok = at == 0 || {
            let b = lower.as_bytes()[at - 1];
            !(b.is_ascii_alphanumeric() || b == b'_')
        };
        let after = lower[at + word.len()..].trim_start();
        if before_ok && after.starts_with('(') {
            return true;
        }
        from = at + word.len();
    }
    false
}

/// Whether `text` (lower case, literals masked) compares the word `time` with
/// `<`, `>`, `=` or `!=`.
fn compares_time(text: &str) -> bool {
    let b = text.as_bytes();
    text.match_indices("time").any(|(at, _)| {
        let before_ok =
            at == 0 || !(b[at - 1].is_ascii_alphanumeric() || matches!(b[at - 1], b'_' | b'$'));
        let after = text[at + 4..].trim_start();
        before_ok && (after.starts_with(['<', '>', '=']) || after.starts_with("!="))
    })
}

/// Aggregating functions: a query using one must bucket by `GROUP BY time($__interval)`.
/// `last()`/`first()` are left out: panels showing the current value of each GPU select the
/// last point in Grafana's range without time buckets.
pub const AGGREGATES: &[&str] = &[
    "count",
    "mean",
    "median",
    "mode",
    "spread",
    "stddev",
    "sum",
    "integral",
    "distinct",
    "percentile",
    "min",
    "max",
    "top",
    "bottom",
    "sample",
    "derivative",
    "non_negative_derivative",
    "difference",
    "moving_average",
    "cumulative_sum",
    "elapsed",
];

/// Everything wrong with one dashboard query (empty when it follows the rules):
///
/// - no `now()` anywhere: the time range comes only from Grafana;
/// - a `SHOW` query needs nothing else; every SELECT statement (each subquery too) has
///   `$timeFilter` in its WHERE and no other condition on `time`;
/// - `GROUP BY time(...)` only with `$__interval` (or `$interval`), and with
///   `fill(null)` or `fill(none)`;
/// - a statement using an aggregating function ([`AGGREGATES`]) groups by
///   `time($__interval)`.
pub fn query_problems(query: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let masked: String = mask_literals(query).into_iter().collect();
    let lower = masked.to_ascii_lowercase();
    if lower.contains("now(") || lower.contains("now ()") {
        problems.push("uses now(): the time range must come from $timeFilter".into());
    }
    let trimmed = lower.trim_start();
    if trimmed.starts_with("show") {
        return problems;
    }
    if !trimmed.starts_with("select") {
        problems.push("neither SELECT nor SHOW".into());
        return problems;
    }
    for (stmt, original) in statements(query) {
        let s = stmt.to_ascii_lowercase();
        let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        let what = original.trim();
        if !s.contains("$timefilter") {
            problems.push(format!("no $timeFilter in `{what}`"));
        }
        // Any other comparison on time hard-codes a range.
        if compares_time(&s.replace("$timefilter", "")) {
            problems.push(format!("compares time itself in `{what}`"));
        }
        let by_time = compact.contains("groupbytime(");
        let by_interval = compact.contains("groupbytime($__interval)")
            || compact.contains("groupbytime($interval)")
            || compact.contains("groupbytime(${__interval})");
        if by_time && !by_interval {
            problems.push(format!(
                "GROUP BY time() with a fixed bucket in `{what}`: use $__interval"
            ));
        }
        if by_time && !(compact.contains("fill(null)") || compact.contains("fill(none)")) {
            problems.push(format!(
                "GROUP BY time() without fill(null) or fill(none) in `{what}`"
            ));
        }
        if let Some(f) = AGGREGATES.iter().find(|f| calls(&s, f))
            && !by_interval
        {
            problems.push(format!(
                "aggregates with {f}() without GROUP BY time($__interval) in `{what}`"
            ));
        }
    }
    problems
}

/// Quoted identifiers (`"name"`) of a query, unescaped, in order.
pub fn quoted_identifiers(query: &str) -> Vec<String> {
    quoted(&Lexed::new(query))
        .into_iter()
        .map(|(_, name)| name)
        .collect()
}

/// Names a query declares with `AS "name"` (aliases, usable by an outer query).
pub fn aliases(query: &str) -> BTreeSet<String> {
    let lexed = Lexed::new(query);
    let masked = lexed.masked();
    quoted(&lexed)
        .into_iter()
        .filter(|(at, _)| ends_with_as(&masked[..*at]))
        .map(|(_, name)| name)
        .collect()
}

/// The quoted identifiers of a query, unescaped, each with the char index of its
/// opening quote.
fn quoted(lexed: &Lexed) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current = (0, String::new());
    for t in lexed.tokens.iter().filter(|t| t.context == Context::Ident) {
        match &t.kind {
            TokenKind::Open => current = (t.span.start, String::new()),
            TokenKind::Close => out.push(std::mem::take(&mut current)),
            TokenKind::Char(c) | TokenKind::Escape(c) => current.1.push(*c),
            TokenKind::Var(_) => current.1.extend(lexed.text(t)),
        }
    }
    out
}

/// Whether masked text ends with the keyword `AS` (any case) and at least one blank.
fn ends_with_as(text: &[char]) -> bool {
    let blanks = text.iter().rev().take_while(|c| c.is_whitespace()).count();
    let Some(word_end) = text.len().checked_sub(blanks).filter(|_| blanks > 0) else {
        return false;
    };
    let Some(word_start) = word_end.checked_sub(2) else {
        return false;
    };
    let word_boundary = word_start == 0 || {
        let c = text[word_start - 1];
        !(c.is_ascii_alphanumeric() || c == '_')
    };
    word_boundary
        && text[word_start].eq_ignore_ascii_case(&'a')
        && text[word_start + 1].eq_ignore_ascii_case(&'s')
}

/// Tags and fields of `measurement` as consumer-influx writes them
/// ([`consumer_influx::schema`]; metric fields from `gpustream`'s catalogue), or `None`
/// for a measurement it does not write.
pub fn known_columns(measurement: &str) -> Option<BTreeSet<String>> {
    Measurement::from_name(measurement).map(Measurement::columns)
}

/// Quoted identifiers of a SELECT query that are neither a measurement, a tag or field
/// of the measurement(s) it reads, nor an alias it declares: typos that would silently
/// return empty columns.
pub fn unknown_identifiers(query: &str) -> Vec<String> {
    let idents = quoted_identifiers(query);
    let mut known: BTreeSet<String> = aliases(query);
    for m in Measurement::ALL {
        known.insert(m.name().to_string());
        if idents.iter().any(|i| i == m.name()) {
            known.extend(m.columns());
        }
    }
    let mut out: Vec<String> = idents.into_iter().filter(|i| !known.contains(i)).collect();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_accept_good_queries() {
        for q in [
            "SELECT mean(\"a\") FROM \"gpu_samples\" WHERE $timeFilter GROUP BY time($__interval), \"host\" fill(null)",
            "SELECT last(\"a\") FROM \"gpu_samples\" WHERE $timeFilter GROUP BY \"host\", \"gpu\"",
            "SELECT \"a\", \"state\" FROM (SELECT last(\"a\") AS \"a\", \"state\" FROM \"gpu_anomalies\" \
             WHERE $timeFilter GROUP BY \"host\") WHERE $timeFilter",
            "SELECT sum(\"p\") FROM (SELECT mean(\"x\") AS \"p\" FROM \"gpu_samples\" WHERE $timeFilter \
             GROUP BY time($__interval), \"gpu\" fill(none)) WHERE $timeFilter GROUP BY time($__interval) fill(null)",
            "SHOW TAG VALUES FROM \"gpu_samples\" WITH KEY = \"host\"",
            "SELECT \"a\" FROM \"gpu_anomalies\" WHERE $timeFilter ORDER BY time DESC LIMIT 5",
            "SELECT \"message\" FROM \"gpu_anomalies\" WHERE $timeFilter AND \"message\" = 'max(x) now() time > 5'",
        ] {
            assert_eq!(query_problems(q), Vec::<String>::new(), "{q}");
        }
    }

    #[test]
    fn rules_reject_hard_coded_ranges_and_buckets() {
        let cases = [
            (
                "SELECT mean(\"a\") FROM \"m\" WHERE time > now() - 6h GROUP BY time($__interval) fill(null)",
                "now()",
            ),
            (
                "SELECT \"a\" FROM \"m\" WHERE time >= 1786042400000ms",
                "$timeFilter",
            ),
            (
                "SELECT \"a\" FROM \"m\" WHERE $timeFilter AND time < 1786042400000ms",
                "compares time",
            ),
            (
                "SELECT mean(\"a\") FROM \"m\" WHERE $timeFilter GROUP BY time(1m) fill(null)",
                "fixed bucket",
            ),
            (
                "SELECT mean(\"a\") FROM \"m\" WHERE $timeFilter GROUP BY time($__interval)",
                "fill",
            ),
            (
                "SELECT mean(\"a\") FROM \"m\" WHERE $timeFilter GROUP BY time($__interval) fill(0)",
                "fill",
            ),
            (
                "SELECT count(\"a\") FROM \"m\" WHERE $timeFilter GROUP BY \"host\"",
                "count()",
            ),
            (
                "SELECT last(\"a\") FROM (SELECT max(\"a\") AS \"a\" FROM \"m\") WHERE $timeFilter",
                "$timeFilter",
            ),
            (
                "SELECT last(\"a\") FROM (SELECT max(\"a\") AS \"a\" FROM \"m\" WHERE $timeFilter) WHERE $timeFilter",
                "max()",
            ),
            ("DROP MEASUREMENT \"m\"", "neither"),
        ];
        for (q, want) in cases {
            let problems = query_problems(q);
            assert!(
                problems.iter().any(|p| p.contains(want)),
                "{q}: expected a problem mentioning {want}, got {problems:?}"
            );
        }
    }

    #[test]
    fn identifiers_are_checked_against_the_schema() {
        let q = "SELECT max(\"t\") AS \"Thermal\" FROM (SELECT (\"perf_cap\" & 2) / 2 AS \"t\" \
                 FROM \"gpu_samples\" WHERE $timeFilter AND \"host\" =~ /^$host$/) WHERE $timeFilter \
                 GROUP BY time($__interval), \"gpu\" fill(null)";
        assert_eq!(unknown_identifiers(q), Vec::<String>::new());
        let q = "SELECT mean(\"gpu_tmp_c\") FROM \"gpu_samples\" WHERE $timeFilter";
        assert_eq!(unknown_identifiers(q), ["gpu_tmp_c"]);
        let q = "SELECT max(\"gpu_temp_c_max\"), mean(\"gpu_temp_c\") FROM \"gpu_rollups_1m\"";
        assert_eq!(unknown_identifiers(q), ["gpu_temp_c"]);
        assert_eq!(
            quoted_identifiers("SELECT \"a\\\"b\" FROM \"m\" WHERE x = '\"no\"' AND y =~ /\"no\"/"),
            ["a\"b", "m"]
        );
    }

    fn masked(q: &str) -> String {
        Lexed::new(q).masked().into_iter().collect()
    }

    #[test]
    fn the_tokenizer_finds_the_literals() {
        // Strings, identifiers, regexes (after `=~`/`!~` only), escapes inside them.
        assert_eq!(
            masked("SELECT \"a\\\"b\" FROM m WHERE x = 'it\\'s' AND y !~ /a\\/b/ AND z / 2"),
            "SELECT \"    \" FROM m WHERE x = '     ' AND y !~ /    / AND z / 2"
        );
        // A literal left open runs to the end.
        assert_eq!(masked("x = 'open"), "x = '    ");
        // Variable references are single tokens, in code and in literals.
        let lexed = Lexed::new("a =~ /^${host:regex}$/ AND $timeFilter '[[x]]'");
        let refs: Vec<(&str, Option<&str>, Context)> = lexed
            .tokens
            .iter()
            .filter_map(|t| match &t.kind {
                TokenKind::Var(r) => Some((r.name.as_str(), r.fmt.as_deref(), t.context)),
                _ => None,
            })
            .collect();
        assert_eq!(
            refs,
            [
                ("host", Some("regex"), Context::Regex),
                ("timeFilter", None, Context::Code),
                ("x", None, Context::Str),
            ]
        );
        // The spans cover every character once, in order.
        let mut at = 0;
        for t in &lexed.tokens {
            assert_eq!(t.span.start, at, "{t:?}");
            at = t.span.end;
        }
        assert_eq!(at, lexed.chars.len());
    }

    #[test]
    fn aliases_are_quoted_names_after_as() {
        let q = "SELECT max(\"t\") AS \"Thermal\", last(\"a\") as\t\"b\\\"c\", x alias \"no\", \
                 \"gpu\" AS gpu FROM (SELECT 1 AS \"t\") WHERE m = 'AS \"no\"'";
        let got: Vec<String> = aliases(q).into_iter().collect();
        assert_eq!(got, ["Thermal", "b\"c", "t"]);
    }
}
