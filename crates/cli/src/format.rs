//! Docker's ways of printing: human sizes and ages, aligned tables, and `--format` templates.

use serde_json::Value;

/// Sizes as Docker prints them: decimal units, three significant digits (`4.26MB`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit < UNITS.len() - 1 {
        size /= 1000.0;
        unit += 1;
    }
    format!("{}{}", significant(size, 3), UNITS[unit])
}

/// Go's `%.3g` for the values sizes take (no exponent needed below 1000).
fn significant(v: f64, digits: i32) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let magnitude = v.abs().log10().floor() as i32;
    let decimals = (digits - 1 - magnitude).max(0) as usize;
    let s = format!("{v:.decimals$}");
    // Rounding may add a digit (999.5 -> "1000"); %g would then drop decimals, which the
    // trim below also does.
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

pub use berth_engine::container::human_duration;

/// "2 weeks ago" for an RFC 3339 timestamp; "N/A" if there is none.
pub fn ago(created: Option<&str>) -> String {
    let Some(t) = created.and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok()) else {
        return "N/A".into();
    };
    let secs = chrono::Utc::now().signed_duration_since(t).num_seconds();
    format!("{} ago", human_duration(secs))
}

/// Prints rows as Docker's tabwriter does (`minwidth 10, padding 3`): each column as wide as
/// its widest cell plus three spaces, and at least ten.
pub fn print_table(rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = Vec::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            let w = cell.chars().count();
            if widths.len() <= i {
                widths.push(w);
            } else {
                widths[i] = widths[i].max(w);
            }
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if i + 1 < row.len() {
                let pad = (widths[i] + 3).max(10) - cell.chars().count();
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    print!("{out}");
}

/// A parsed `--format` value: Docker's Go templates, in the subset people use.
pub struct Template {
    table: bool,
    json_lines: bool,
    body: String,
}

impl Template {
    /// `table …`, `json`, or a template with `{{.Field}}`, `{{json .X}}`, `{{index .X 0}}`,
    /// `{{upper .X}}`, `{{lower .X}}`.
    pub fn parse(format: &str) -> Template {
        let f = format.trim();
        if f == "json" {
            return Template {
                table: false,
                json_lines: true,
                body: String::new(),
            };
        }
        let (table, body) = match f.strip_prefix("table") {
            Some(rest) => (true, rest.trim_start().to_string()),
            None => (false, format.to_string()),
        };
        let body = body.replace("\\t", "\t").replace("\\n", "\n");
        Template {
            table,
            json_lines: false,
            body,
        }
    }

    /// Whether `table` output with headers was asked for.
    pub fn is_table(&self) -> bool {
        self.table
    }

    /// Renders one value.
    pub fn render(&self, v: &Value) -> Result<String, String> {
        if self.json_lines {
            return Ok(v.to_string());
        }
        render_template(&self.body, v)
    }

    /// The header row of a table template: each `{{.Field}}` replaced by its column title.
    pub fn header(&self, titles: &dyn Fn(&str) -> String) -> String {
        let mut out = String::new();
        let mut rest = self.body.as_str();
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let Some(end) = rest[start..].find("}}") else {
                break;
            };
            let action = rest[start + 2..start + end].trim();
            let field = action.trim_start_matches('.');
            out.push_str(&titles(field));
            rest = &rest[start + end + 2..];
        }
        out.push_str(rest);
        out
    }
}

/// Prints lines made of tab-separated cells as an aligned table.
pub fn print_tabbed(lines: &[String]) {
    let rows: Vec<Vec<String>> = lines
        .iter()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect();
    print_table(&rows);
}

fn render_template(body: &str, v: &Value) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = body;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find("}}")
            .ok_or_else(|| format!("template parsing error: unclosed action in {body:?}"))?;
        let action = rest[start + 2..start + end]
            .trim()
            .trim_start_matches('-')
            .trim_end_matches('-')
            .trim();
        out.push_str(&eval(action, v)?);
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn eval(action: &str, root: &Value) -> Result<String, String> {
    let words: Vec<&str> = action.split_whitespace().collect();
    match words.as_slice() {
        ["json", path] => Ok(lookup(root, path)?.to_string()),
        ["upper", path] => Ok(go_string(&lookup(root, path)?).to_uppercase()),
        ["lower", path] => Ok(go_string(&lookup(root, path)?).to_lowercase()),
        ["index", path, key] => {
            let v = lookup(root, path)?;
            let key = key.trim_matches('"');
            let item = match (&v, key.parse::<usize>()) {
                (Value::Array(a), Ok(i)) => a
                    .get(i)
                    .cloned()
                    .ok_or_else(|| format!("error calling index: index out of range: {i}"))?,
                (Value::Object(m), _) => m.get(key).cloned().unwrap_or(Value::Null),
                _ => return Err(format!("error calling index: cannot index {path}")),
            };
            Ok(go_string(&item))
        }
        [path] if path.starts_with('.') => Ok(go_string(&lookup(root, path)?)),
        _ => Err(format!(
            "template: unsupported action {{{{{action}}}}}; use {{{{.Field}}}}, {{{{json .Field}}}} or {{{{index .Field N}}}}"
        )),
    }
}

fn lookup(root: &Value, path: &str) -> Result<Value, String> {
    if path == "." {
        return Ok(root.clone());
    }
    let mut cur = root;
    for part in path.trim_start_matches('.').split('.') {
        cur = match cur {
            Value::Object(m) => m.get(part).ok_or_else(|| {
                format!(
                    "template: can't evaluate field {part} in type {}",
                    type_name(cur)
                )
            })?,
            Value::Null => return Ok(Value::Null),
            _ => return Err(format!("template: can't evaluate field {part}")),
        };
    }
    Ok(cur.clone())
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Object(_) => "object",
        Value::Array(_) => "slice",
        Value::String(_) => "string",
        _ => "value",
    }
}

/// How Go's text/template prints a value.
fn go_string(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(go_string).collect::<Vec<_>>().join(" ")
        ),
        Value::Object(m) => format!(
            "map[{}]",
            m.iter()
                .map(|(k, v)| format!("{k}:{}", go_string(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes_like_docker() {
        for (n, s) in [
            (0, "0B"),
            (999, "999B"),
            (4_261_000, "4.26MB"),
            (4_200_000, "4.2MB"),
            (248_123_456, "248MB"),
            (1_234_567_890, "1.23GB"),
        ] {
            assert_eq!(human_size(n), s);
        }
    }

    #[test]
    fn durations_like_docker() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(59), "59 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(3600), "About an hour");
        assert_eq!(human_duration(3 * 86400), "3 days");
        assert_eq!(human_duration(20 * 86400), "2 weeks");
        assert_eq!(human_duration(100 * 86400), "3 months");
        assert_eq!(human_duration(800 * 86400), "2 years");
    }

    #[test]
    fn templates() {
        let v = json!({"ID": "abc", "Tags": ["a", "b"], "Config": {"Cmd": ["sh"], "Env": null}});
        let r = |t: &str| {
            Template::parse(t)
                .render(&v)
                .unwrap_or_else(|e| format!("error: {e}"))
        };
        assert_eq!(r("{{.ID}}"), "abc");
        assert_eq!(r("{{.ID}}\\t{{.Config.Cmd}}"), "abc\t[sh]");
        assert_eq!(r("{{json .Config.Cmd}}"), r#"["sh"]"#);
        assert_eq!(r("{{index .Tags 1}}"), "b");
        assert_eq!(r("{{.Config.Env}}"), "<no value>");
        assert_eq!(
            r("{{.Nope}}"),
            "error: template: can't evaluate field Nope in type object"
        );
        assert_eq!(r("json"), v.to_string());
    }
}
