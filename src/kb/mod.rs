//! The company's knowledge base: passages of its documents in a local BM25 index
//! (tantivy) that `voxd kb index` builds, and the search the daemon runs on each caller
//! turn to put the best passages into the prompt ([`crate::conversation::prompt`]).

pub mod analyzer;
pub mod build;
pub mod passages;

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use tantivy::collector::{DocSetCollector, TopDocs};
use tantivy::query::{AllQuery, BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, STORED,
};
use tantivy::{Index, IndexReader, TantivyDocument, Term};

use crate::config::KbConfig;
pub use passages::Passage;

/// File in the index folder that marks it as voxd's (so `voxd kb index` only ever replaces
/// a folder it made).
const MARKER: &str = "voxd-kb";

/// A passage that matched, with its BM25 score.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Hit {
    pub score: f32,
    pub source: String,
    pub heading: String,
    pub text: String,
}

/// How much more a word in a passage's heading counts than one in its text: a heading
/// names the topic ("Delivery") that the text may only imply.
const HEADING_BOOST: f32 = 2.0;

/// The index's fields: `heading` and `text` are searched and stored, `source` stored.
#[derive(Clone, Copy)]
struct Fields {
    source: Field,
    heading: Field,
    text: Field,
}

impl Fields {
    fn schema() -> (Schema, Self) {
        let mut b = Schema::builder();
        let searched = TextOptions::default()
            .set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(analyzer::NAME)
                    .set_index_option(IndexRecordOption::WithFreqs),
            )
            .set_stored();
        let fields = Self {
            source: b.add_text_field("source", STORED),
            heading: b.add_text_field("heading", searched.clone()),
            text: b.add_text_field("text", searched),
        };
        (b.build(), fields)
    }

    fn of(index: &Index) -> Result<Self> {
        let schema = index.schema();
        let field = |name: &str| {
            schema
                .get_field(name)
                .map_err(|_| anyhow!("the index has no field {name:?}"))
        };
        Ok(Self {
            source: field("source")?,
            heading: field("heading")?,
            text: field("text")?,
        })
    }
}

/// An opened index, ready to search from any thread.
pub struct KnowledgeBase {
    reader: IndexReader,
    index: Index,
    fields: Fields,
    cfg: KbConfig,
}

impl KnowledgeBase {
    /// The configured knowledge base when `kb.enabled`; an error names `voxd kb index` when
    /// its index is missing.
    pub fn load(cfg: &KbConfig) -> Result<Option<Self>> {
        if !cfg.enabled {
            return Ok(None);
        }
        let kb = Self::open(&cfg.index, cfg)?;
        tracing::info!(
            index = %cfg.index.display(),
            passages = kb.passages(),
            "knowledge base loaded"
        );
        Ok(Some(kb))
    }

    /// Opens the index in `dir` (searches use `cfg`'s `top_k` and `min_score`).
    pub fn open(dir: &Path, cfg: &KbConfig) -> Result<Self> {
        if !dir.join(MARKER).is_file() {
            bail!(
                "knowledge base index {} not found: build it with `voxd kb index DOCS...` \
                 (or set kb.enabled = false)",
                dir.display()
            );
        }
        let index = Index::open_in_dir(dir)
            .with_context(|| format!("cannot open the knowledge base index {}", dir.display()))?;
        index
            .tokenizers()
            .register(analyzer::NAME, analyzer::analyzer());
        let fields = Fields::of(&index)
            .with_context(|| format!("{} is not a voxd knowledge base", dir.display()))?;
        let reader = index.reader()?;
        Ok(Self {
            reader,
            index,
            fields,
            cfg: cfg.clone(),
        })
    }

    /// The configuration it answers with (instruction, hand-off sentence).
    pub fn config(&self) -> &KbConfig {
        &self.cfg
    }

    /// How many passages the index holds.
    pub fn passages(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// The passages' headings, each once, in the order the documents were indexed.
    pub fn headings(&self) -> Result<Vec<String>> {
        let searcher = self.reader.searcher();
        let mut addresses: Vec<_> = searcher
            .search(&AllQuery, &DocSetCollector)?
            .into_iter()
            .collect();
        addresses.sort();
        let mut out: Vec<String> = Vec::new();
        for address in addresses {
            let doc: TantivyDocument = searcher.doc(address)?;
            let heading = doc
                .get_first(self.fields.heading)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .trim();
            if !heading.is_empty() && !out.iter().any(|h| h == heading) {
                out.push(heading.to_string());
            }
        }
        Ok(out)
    }

    /// The passages that best match `question`, best first: at most `kb.top_k`, each
    /// scoring at least `kb.min_score`. Any words match (BM25 ranks those that share more,
    /// and rarer, words higher); a question of stop words only finds nothing.
    pub fn search(&self, question: &str) -> Result<Vec<Hit>> {
        self.search_top(question, self.cfg.top_k as usize)
    }

    /// Like [`Self::search`] with `limit` instead of `kb.top_k`.
    pub fn search_top(&self, question: &str, limit: usize) -> Result<Vec<Hit>> {
        let mut analyzer = self
            .index
            .tokenizers()
            .get(analyzer::NAME)
            .ok_or_else(|| anyhow!("knowledge base analyzer not registered"))?;
        let term = |field: Field, t: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(field, t),
                IndexRecordOption::WithFreqs,
            ))
        };
        let clauses: Vec<(Occur, Box<dyn Query>)> = analyzer::terms(&mut analyzer, question)
            .into_iter()
            .flat_map(|t| {
                let heading = BoostQuery::new(term(self.fields.heading, &t), HEADING_BOOST);
                [
                    (Occur::Should, term(self.fields.text, &t)),
                    (Occur::Should, Box::new(heading) as Box<dyn Query>),
                ]
            })
            .collect();
        if clauses.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let searcher = self.reader.searcher();
        let top = searcher.search(
            &BooleanQuery::new(clauses),
            &TopDocs::with_limit(limit).order_by_score(),
        )?;
        let mut hits = Vec::new();
        for (score, address) in top {
            if score < self.cfg.min_score {
                continue;
            }
            let doc: TantivyDocument = searcher.doc(address)?;
            let get = |f: Field| {
                doc.get_first(f)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string()
            };
            hits.push(Hit {
                score,
                source: get(self.fields.source),
                heading: get(self.fields.heading),
                text: get(self.fields.text),
            });
        }
        Ok(hits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EN: &str = "# Sunny Bakery\n\nA family bakery in the old town.\n\n\
        ## Opening hours\n\nWe open at 8 am and close at 7 pm, Monday to Saturday.\n\n\
        ## Prices\n\nA loaf of rye bread costs 4 dollars. A chocolate cake costs 30 dollars.\n\n\
        ## Delivery\n\nWe deliver cakes in the city for 5 dollars.\n";
    const RU: &str = "# Доставка\n\nДоставка по городу стоит 300 рублей.\n\n\
        # Адрес\n\nНаша пекарня находится на улице Ленина, дом 5.\n\n\
        # Цены\n\nБуханка ржаного хлеба стоит 90 рублей, торт стоит 1500 рублей.\n";

    /// An index of the two documents above, searched with `top_k` passages.
    fn kb(top_k: u32) -> (tempfile::TempDir, KnowledgeBase) {
        let dir = tempfile::tempdir().unwrap();
        let docs = dir.path().join("docs");
        std::fs::create_dir(&docs).unwrap();
        std::fs::write(docs.join("faq.md"), EN).unwrap();
        std::fs::write(docs.join("ru.txt"), RU).unwrap();
        std::fs::write(docs.join("logo.png"), [0u8, 1, 2]).unwrap();
        let index = dir.path().join("data/kb");
        let summary = build::build(&[docs], &index).unwrap();
        assert_eq!(
            summary,
            build::Summary {
                files: 2,
                passages: 7,
                skipped: 1
            }
        );
        let cfg = KbConfig {
            enabled: true,
            index: index.clone(),
            top_k,
            ..KbConfig::default()
        };
        let kb = KnowledgeBase::load(&cfg).unwrap().unwrap();
        (dir, kb)
    }

    fn best(kb: &KnowledgeBase, q: &str) -> String {
        let hits = kb.search(q).unwrap();
        assert!(!hits.is_empty(), "nothing found for {q:?}");
        hits[0].heading.clone()
    }

    #[test]
    fn english_questions_find_their_passage() {
        let (_dir, kb) = kb(3);
        assert_eq!(kb.passages(), 7);
        assert_eq!(best(&kb, "What are your opening hours?"), "Opening hours");
        assert_eq!(best(&kb, "When do you open?"), "Opening hours");
        assert_eq!(best(&kb, "How much does the rye bread cost?"), "Prices");
        assert_eq!(best(&kb, "How much does delivery cost?"), "Delivery");
        let hits = kb.search("cakes").unwrap();
        assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
        assert!(hits[0].source.ends_with("faq.md"), "{}", hits[0].source);
    }

    #[test]
    fn headings_come_once_each_in_document_order() {
        let (_dir, kb) = kb(3);
        assert_eq!(
            kb.headings().unwrap(),
            [
                "Sunny Bakery",
                "Opening hours",
                "Prices",
                "Delivery",
                "Доставка",
                "Адрес",
                "Цены"
            ]
        );
    }

    #[test]
    fn russian_inflected_forms_match_through_stemming() {
        let (_dir, kb) = kb(3);
        // "доставку" (accusative) finds "Доставка"; "находитесь" finds "находится".
        assert_eq!(best(&kb, "Сколько стоит доставку заказать?"), "Доставка");
        assert_eq!(best(&kb, "Где вы находитесь?"), "Адрес");
        // "цены" / "торта" / "хлеба" find "Цены", "торт", "хлеба".
        assert_eq!(best(&kb, "Какие у вас цены на торты?"), "Цены");
        assert_eq!(best(&kb, "Сколько стоит буханку хлеба?"), "Цены");
    }

    #[test]
    fn unrelated_or_empty_questions_find_nothing() {
        let (_dir, kb) = kb(3);
        assert!(kb.search("Do you sell bicycles?").unwrap().is_empty());
        assert!(kb.search("Продаёте ли вы велосипеды?").unwrap().is_empty());
        assert!(kb.search("What is it?").unwrap().is_empty());
        assert!(kb.search("").unwrap().is_empty());
    }

    #[test]
    fn top_k_and_min_score_limit_the_passages() {
        let (_dir, kb) = kb(1);
        assert_eq!(kb.search("dollars").unwrap().len(), 1);
        assert_eq!(kb.search_top("dollars", 5).unwrap().len(), 2);
        let all = kb.search_top("dollars cakes", 5).unwrap();
        let cfg = KbConfig {
            min_score: all[0].score,
            enabled: true,
            ..kb.config().clone()
        };
        let strict = KnowledgeBase::open(&cfg.index, &cfg).unwrap();
        let kept = strict.search_top("dollars cakes", 5).unwrap();
        assert_eq!(kept, all[..1]);
    }

    #[test]
    fn reindexing_replaces_the_index_and_foreign_folders_are_left_alone() {
        let (dir, kb) = kb(3);
        let docs = dir.path().join("new.md");
        std::fs::write(&docs, "# Parking\n\nFree parking behind the shop.\n").unwrap();
        let index = kb.config().index.clone();
        drop(kb);
        build::build(std::slice::from_ref(&docs), &index).unwrap();
        let cfg = KbConfig {
            index: index.clone(),
            ..KbConfig::default()
        };
        let kb = KnowledgeBase::open(&index, &cfg).unwrap();
        assert_eq!(kb.passages(), 1);
        assert_eq!(best(&kb, "Is there parking?"), "Parking");

        let foreign = dir.path().join("docs");
        let err = build::build(&[docs], &foreign).unwrap_err().to_string();
        assert!(err.contains("not a knowledge base index"), "{err}");
        assert!(foreign.join("faq.md").is_file());
    }

    #[test]
    fn a_missing_index_names_the_command_that_builds_it() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = KbConfig {
            enabled: true,
            index: dir.path().join("kb"),
            ..KbConfig::default()
        };
        let err = KnowledgeBase::load(&cfg).err().unwrap().to_string();
        assert!(err.contains("voxd kb index"), "{err}");
        let off = KbConfig {
            enabled: false,
            ..cfg
        };
        assert!(KnowledgeBase::load(&off).unwrap().is_none());
    }
}
