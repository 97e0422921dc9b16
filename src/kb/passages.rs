//! Splitting a company document into passages: short runs of sentences under their
//! heading, small enough that a few of them fit in a prompt and a small model can quote one.

/// Longest passage, in characters; a single longer sentence is cut at words.
pub const MAX_CHARS: usize = 300;

/// One passage of a document.
#[derive(Debug, Clone, PartialEq)]
pub struct Passage {
    /// The file it comes from, as it was indexed.
    pub source: String,
    /// The nearest heading above it (empty when there is none).
    pub heading: String,
    pub text: String,
}

/// The document formats `voxd kb index` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Plain text: paragraphs separated by blank lines; `#` lines are headings.
    Text,
    /// Markdown: `#` headings, paragraphs, list items and table rows.
    Markdown,
    /// HTML: `<h1>`..`<h6>` headings, block elements as paragraphs, other tags dropped.
    Html,
}

impl Format {
    /// The format of a file by its extension; None for files the index skips.
    pub fn of(path: &std::path::Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "txt" | "text" => Some(Self::Text),
            "md" | "markdown" => Some(Self::Markdown),
            "html" | "htm" => Some(Self::Html),
            _ => None,
        }
    }
}

/// Splits `text` (a whole file from `source`) into passages.
pub fn split(source: &str, text: &str, format: Format) -> Vec<Passage> {
    let text = match format {
        Format::Html => html_to_text(text),
        Format::Text | Format::Markdown => text.to_string(),
    };
    let mut out = Vec::new();
    let mut heading = String::new();
    let mut units: Vec<String> = Vec::new();
    let mut line_run = String::new();
    let flush_run = |run: &mut String, units: &mut Vec<String>| {
        units.extend(sentences(run));
        run.clear();
    };
    for raw in text.lines() {
        let line = raw.trim();
        if let Some(h) = heading_text(line) {
            flush_run(&mut line_run, &mut units);
            out.extend(group(source, &heading, &units));
            units.clear();
            heading = h;
        } else if line.is_empty() {
            flush_run(&mut line_run, &mut units);
        } else if let Some(item) = list_item(line, format) {
            flush_run(&mut line_run, &mut units);
            line_run.push_str(&item);
            // A list item or table row stands alone: it rarely ends with a full stop.
            flush_run(&mut line_run, &mut units);
        } else if format == Format::Markdown && is_table_rule(line) {
            continue;
        } else {
            if !line_run.is_empty() {
                line_run.push(' ');
            }
            line_run.push_str(&clean_inline(line));
        }
    }
    flush_run(&mut line_run, &mut units);
    out.extend(group(source, &heading, &units));
    out
}

/// The text of a `#` heading line.
fn heading_text(line: &str) -> Option<String> {
    let rest = line.trim_start_matches('#');
    let level = line.len() - rest.len();
    ((1..=6).contains(&level) && (rest.is_empty() || rest.starts_with(' ')))
        .then(|| clean_inline(rest.trim().trim_end_matches('#').trim()))
}

/// A list item ("- x", "* x", "1. x") or, in Markdown, a table row ("| a | b |").
fn list_item(line: &str, format: Format) -> Option<String> {
    if format == Format::Markdown && line.starts_with('|') && !is_table_rule(line) {
        let cells: Vec<String> = line
            .trim_matches('|')
            .split('|')
            .map(|c| clean_inline(c.trim()))
            .filter(|c| !c.is_empty())
            .collect();
        return Some(cells.join(", "));
    }
    let rest = ["- ", "* ", "+ ", "• "]
        .iter()
        .find_map(|b| line.strip_prefix(b))
        .or_else(|| {
            let digits = line.chars().take_while(char::is_ascii_digit).count();
            (digits > 0)
                .then(|| {
                    line[digits..]
                        .strip_prefix(". ")
                        .or(line[digits..].strip_prefix(") "))
                })
                .flatten()
        })?;
    Some(clean_inline(rest.trim()))
}

/// A Markdown table's header rule, like `|---|:--:|`.
fn is_table_rule(line: &str) -> bool {
    line.starts_with('|') && line.chars().all(|c| matches!(c, '|' | '-' | ':' | ' '))
}

/// Drops Markdown emphasis and code marks, keeps a link's text.
fn clean_inline(s: &str) -> String {
    let mut out = s.replace("**", "").replace("__", "").replace('`', "");
    while let (Some(open), Some(mid)) = (out.find('['), out.find("](")) {
        let Some(close) = out[mid..].find(')').map(|i| mid + i) else {
            break;
        };
        if open > mid {
            break;
        }
        let text = out[open + 1..mid].to_string();
        out.replace_range(open..=close, &text);
    }
    out
}

/// The sentences of a paragraph; a list item without an end mark gets a full stop, so the
/// items read as sentences once grouped.
fn sentences(paragraph: &str) -> Vec<String> {
    let p = paragraph.trim();
    if p.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut start = 0;
    for end in crate::sentences::ends(p) {
        out.push(p[start..end].trim().to_string());
        start = end;
    }
    out.push(p[start..].trim().to_string());
    out.retain(|s| !s.is_empty());
    for s in &mut out {
        if !s.ends_with(['.', '!', '?', '…', ':', ';']) {
            s.push('.');
        }
    }
    out
}

/// Groups consecutive sentences into passages of at most [`MAX_CHARS`].
fn group(source: &str, heading: &str, units: &[String]) -> Vec<Passage> {
    let mut texts: Vec<String> = Vec::new();
    let mut current = String::new();
    for unit in units.iter().flat_map(|u| cut_long(u)) {
        if !current.is_empty() && current.chars().count() + 1 + unit.chars().count() > MAX_CHARS {
            texts.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(&unit);
    }
    if !current.is_empty() {
        texts.push(current);
    }
    texts
        .into_iter()
        .map(|text| Passage {
            source: source.to_string(),
            heading: heading.to_string(),
            text,
        })
        .collect()
}

/// A sentence longer than [`MAX_CHARS`] cut at word boundaries.
fn cut_long(sentence: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    for word in sentence.split_whitespace() {
        let last = out.last_mut().expect("never empty");
        if !last.is_empty() && last.chars().count() + 1 + word.chars().count() > MAX_CHARS {
            out.push(word.to_string());
        } else {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(word);
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

/// HTML as plain text with `#` headings: the head, scripts and styles dropped, block elements on
/// their own lines, the common entities decoded.
fn html_to_text(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        let Some(gt) = rest[lt..].find('>').map(|i| lt + i) else {
            rest = "";
            break;
        };
        let tag = rest[lt + 1..gt].trim().to_ascii_lowercase();
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect();
        rest = &rest[gt + 1..];
        if !tag.starts_with('/') && ["head", "script", "style"].contains(&name.as_str()) {
            let close = format!("</{name}");
            rest = rest
                .to_ascii_lowercase()
                .find(&close)
                .map_or("", |i| &rest[i..]);
            continue;
        }
        match name.as_str() {
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" if !tag.starts_with('/') => {
                out.push_str("\n\n# ");
            }
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "p" | "div" | "section" | "article"
            | "table" | "ul" | "ol" => out.push_str("\n\n"),
            "li" | "tr" if !tag.starts_with('/') => out.push_str("\n- "),
            "br" => out.push('\n'),
            "td" | "th" if !tag.starts_with('/') => out.push(' '),
            _ => {}
        }
    }
    out.push_str(rest);
    decode_entities(&out)
}

fn decode_entities(s: &str) -> String {
    [
        ("&nbsp;", " "),
        ("&lt;", "<"),
        ("&gt;", ">"),
        ("&quot;", "\""),
        ("&#39;", "'"),
        ("&mdash;", "—"),
        ("&ndash;", "–"),
        ("&amp;", "&"),
    ]
    .iter()
    .fold(s.to_string(), |acc, (from, to)| acc.replace(from, to))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(ps: &[Passage]) -> Vec<(&str, &str)> {
        ps.iter()
            .map(|p| (p.heading.as_str(), p.text.as_str()))
            .collect()
    }

    #[test]
    fn markdown_headings_paragraphs_lists_and_tables() {
        let md =
            "# Sunny Bakery\n\nWe bake **fresh** bread every day.\nSee [our site](http://x).\n\n\
                  ## Opening hours\n\n- Monday to Friday: 8 am to 7 pm\n- Sunday: closed\n\n\
                  ## Prices\n\n| Item | Price |\n|---|---:|\n| Rye loaf | 3 euros |\n";
        let ps = split("faq.md", md, Format::Markdown);
        assert_eq!(
            texts(&ps),
            [
                (
                    "Sunny Bakery",
                    "We bake fresh bread every day. See our site."
                ),
                (
                    "Opening hours",
                    "Monday to Friday: 8 am to 7 pm. Sunday: closed."
                ),
                ("Prices", "Item, Price. Rye loaf, 3 euros."),
            ]
        );
        assert!(ps.iter().all(|p| p.source == "faq.md"));
    }

    #[test]
    fn long_paragraphs_become_several_passages_of_whole_sentences() {
        let sentence = "Our couriers deliver across the whole city within two hours.";
        let text = [sentence; 12].join(" ");
        let ps = split("a.txt", &text, Format::Text);
        assert!(ps.len() >= 3, "{ps:?}");
        for p in &ps {
            assert!(p.text.chars().count() <= MAX_CHARS, "{}", p.text);
            assert!(p.text.starts_with("Our") && p.text.ends_with("hours."));
            assert_eq!(p.heading, "");
        }
        let words: usize = ps.iter().map(|p| p.text.split_whitespace().count()).sum();
        assert_eq!(words, 12 * sentence.split_whitespace().count());
    }

    #[test]
    fn overlong_sentence_is_cut_at_words() {
        let text = "слово ".repeat(200);
        let ps = split("ru.txt", &text, Format::Text);
        assert!(ps.len() > 1);
        assert!(ps.iter().all(|p| p.text.chars().count() <= MAX_CHARS));
    }

    #[test]
    fn plain_text_paragraphs_and_russian() {
        let txt = "# Часы работы\nМы работаем с 9 до 18.\nВ субботу с 10 до 16.\n\n\
                   Адрес: Москва, улица Ленина, 5.";
        let ps = split("ru.txt", txt, Format::Text);
        assert_eq!(
            texts(&ps),
            [(
                "Часы работы",
                "Мы работаем с 9 до 18. В субботу с 10 до 16. Адрес: Москва, улица Ленина, 5."
            )]
        );
    }

    #[test]
    fn html_headings_and_blocks() {
        let html = "<html><head><title>FAQ</title><style>p{color:red}</style></head><body>\
                    <h2>Delivery</h2><p>We deliver&nbsp;in 2 days.</p><ul><li>Free over 50 &amp; up</li></ul>\
                    <script>var x = '<p>no</p>';</script></body></html>";
        let ps = split("faq.html", html, Format::Html);
        assert_eq!(
            texts(&ps),
            [("Delivery", "We deliver in 2 days. Free over 50 & up.")]
        );
    }

    #[test]
    fn formats_by_extension() {
        use std::path::Path;
        assert_eq!(Format::of(Path::new("a/FAQ.MD")), Some(Format::Markdown));
        assert_eq!(Format::of(Path::new("b.txt")), Some(Format::Text));
        assert_eq!(Format::of(Path::new("c.htm")), Some(Format::Html));
        assert_eq!(Format::of(Path::new("d.pdf")), None);
        assert_eq!(Format::of(Path::new("README")), None);
    }
}
