//! `voxd bench kb`: the knowledge base's cost. Indexes a generated company handbook of 200
//! passages (half English, half Russian) in a temp folder, times searches for typical caller
//! questions, and the LLM's time to its first word with and without the passages.

use std::time::Instant;

use anyhow::Result;

use super::{median, percentile};
use crate::config::Config;
use crate::conversation::prompt::{self, TurnPrompt};
use crate::engines::llm::Llm;
use crate::kb::{build, KnowledgeBase};

/// Branches of the made-up company; each gets a handbook page in both languages.
const CITIES: &[(&str, &str)] = &[
    ("Riverton", "Ривертон"),
    ("Lakeside", "Лейксайд"),
    ("Hillcrest", "Хиллкрест"),
    ("Oakford", "Оукфорд"),
    ("Brookfield", "Брукфилд"),
    ("Stonebridge", "Стоунбридж"),
    ("Maplewood", "Мейплвуд"),
    ("Fairview", "Фэйрвью"),
    ("Ashton", "Аштон"),
    ("Westfield", "Вестфилд"),
];

/// Caller questions, each asked `runs` times.
const QUESTIONS: &[&str] = &[
    "What are your opening hours in Riverton?",
    "How much does a repair cost?",
    "Where is your office in Lakeside?",
    "Do you deliver on weekends?",
    "Can I return a product after two weeks?",
    "Do you sell bicycles?",
    "Когда открывается офис в Хиллкресте?",
    "Сколько стоит доставка?",
    "Какой адрес у филиала в Оукфорде?",
    "Можно ли вернуть товар?",
    "Есть ли у вас скидки для студентов?",
    "Продаёте ли вы велосипеды?",
];

/// Runs the benchmark: `runs` searches per question, then a few LLM prompts.
pub fn run(cfg: Config, runs: usize) -> Result<()> {
    let dir = tempfile_dir()?;
    let docs = dir.join("docs");
    std::fs::create_dir_all(&docs)?;
    for (i, (en, ru)) in CITIES.iter().enumerate() {
        std::fs::write(docs.join(format!("{i:02}-{en}.md")), english_page(i, en))?;
        std::fs::write(
            docs.join(format!("{i:02}-{en}.ru.txt")),
            russian_page(i, ru),
        )?;
    }
    let index = dir.join("kb");
    let t = Instant::now();
    let summary = build::build(&[docs], &index)?;
    let index_ms = t.elapsed().as_secs_f64() * 1000.0;
    let mut kb_cfg = cfg.kb.clone();
    kb_cfg.index = index.clone();
    let t = Instant::now();
    let kb = KnowledgeBase::open(&index, &kb_cfg)?;
    let open_ms = t.elapsed().as_secs_f64() * 1000.0;
    println!(
        "indexed {} passages from {} files in {index_ms:.0} ms; opened in {open_ms:.1} ms",
        summary.passages, summary.files
    );

    let mut all = Vec::new();
    println!("\n| question | passages | best score | median | p95 |\n|---|---|---|---|---|");
    for q in QUESTIONS {
        kb.search(q)?; // warm-up
        let mut took = Vec::with_capacity(runs);
        let mut hits = Vec::new();
        for _ in 0..runs {
            let t = Instant::now();
            hits = kb.search(q)?;
            took.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        all.extend_from_slice(&took);
        println!(
            "| {q} | {} | {:.2} | {:.3} ms | {:.3} ms |",
            hits.len(),
            hits.first().map_or(0.0, |h| h.score),
            median(&mut took.clone()),
            percentile(&mut took, 95.0)
        );
    }
    println!(
        "\nall {} searches: median {:.3} ms, p95 {:.3} ms, max {:.3} ms",
        all.len(),
        median(&mut all.clone()),
        percentile(&mut all.clone(), 95.0),
        percentile(&mut all, 100.0)
    );
    llm_cost(&cfg, &kb, runs.min(5))?;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// The LLM's time to its first word for a question, asked plain and with its passages, and
/// how many prompt tokens it evaluated (past the cached system message).
fn llm_cost(cfg: &Config, kb: &KnowledgeBase, runs: usize) -> Result<()> {
    let llm = Llm::load(&cfg.models.llm, &cfg.llm, 1, None)?;
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    let first_word = |messages| -> Result<(f64, f64)> {
        let t = Instant::now();
        let r = rt.block_on(super::read_reply(llm.reply(messages, None)?))?;
        let ms = (r.first.unwrap_or(r.done) - t).as_secs_f64() * 1000.0;
        Ok((ms, r.prompt_evaluated as f64))
    };
    let head = prompt::head(&cfg.llm.system_prompt, None, false);
    let (mut plain, mut with_kb) = (Vec::new(), Vec::new());
    let questions = QUESTIONS
        .iter()
        .filter(|q| kb.search(q).is_ok_and(|h| !h.is_empty()));
    for (i, q) in questions.cycle().take(runs * 2).enumerate() {
        // A new number each time, so no prompt reuses the previous one's cache past the
        // system message, as in a call's first turn.
        let heard = format!("{q} ({i})");
        for (kb, out) in [(None, &mut plain), (Some(kb), &mut with_kb)] {
            if let TurnPrompt::Ask(messages) = prompt::for_turn(&head, kb, &[], &heard, false)? {
                out.push(first_word(messages)?);
            }
        }
    }
    let med = |v: &[(f64, f64)], pick: fn(&(f64, f64)) -> f64| {
        median(&mut v.iter().map(pick).collect::<Vec<_>>())
    };
    println!(
        "\n| LLM prompt ({} questions, kb.top_k {}) | tokens evaluated | to first word |",
        plain.len(),
        cfg.kb.top_k
    );
    println!("|---|---|---|");
    for (name, v) in [
        ("plain question", &plain),
        ("question with passages", &with_kb),
    ] {
        println!(
            "| {name} | {:.0} | {:.0} ms |",
            med(v, |x| x.1),
            med(v, |x| x.0)
        );
    }
    Ok(())
}

/// A fresh folder under the system's temp dir.
fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("voxd-bench-kb-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// One branch's English page: ten passages under their headings.
fn english_page(i: usize, city: &str) -> String {
    let open = 7 + i % 3;
    let close = 17 + i % 4;
    format!(
        "# {city} branch\n\n\
         ## Opening hours\n\nThe {city} office opens at {open} am and closes at {close}:00, Monday to Friday. \
         On Saturday it works from 10 am to 3 pm.\n\n\
         ## Address\n\nThe {city} office is at {n} Station Road, {city}, on the second floor. \
         The entrance is from the courtyard.\n\n\
         ## Repairs\n\nA standard repair in {city} costs {repair} dollars and takes three working days. \
         Urgent repairs cost twice as much.\n\n\
         ## Delivery\n\nWe deliver in {city} for {delivery} dollars, free for orders over 100 dollars. \
         Weekend delivery is available on Saturdays only.\n\n\
         ## Returns\n\nYou can return a product within 14 days with the receipt. \
         Refunds reach your card within five working days.\n\n\
         ## Payment\n\nWe accept cards, cash and bank transfers. Companies can pay by invoice.\n\n\
         ## Warranty\n\nEvery repair has a six month warranty. The warranty does not cover water damage.\n\n\
         ## Parking\n\nFree parking for {spaces} cars is behind the {city} office.\n\n\
         ## Discounts\n\nStudents and pensioners get a {discount} percent discount with a valid card.\n\n\
         ## Contacts\n\nCall the {city} office at +1 555 01{i:02} or write to {lower}@example.com.\n",
        n = 10 + i * 7,
        repair = 40 + i * 5,
        delivery = 5 + i % 4,
        spaces = 10 + i,
        discount = 5 + i % 3 * 5,
        lower = city.to_lowercase(),
    )
}

/// One branch's Russian page (plain text with `#` headings): ten passages.
fn russian_page(i: usize, city: &str) -> String {
    let open = 8 + i % 2;
    format!(
        "# Часы работы\n\nОфис в городе {city} открывается в {open} утра и работает до 19 часов по будням.\n\n\
         # Адрес\n\nАдрес филиала: {city}, улица Ленина, дом {n}, второй этаж.\n\n\
         # Ремонт\n\nСтандартный ремонт стоит {repair} рублей и занимает три рабочих дня.\n\n\
         # Доставка\n\nДоставка по городу {city} стоит {delivery} рублей, для заказов от 5000 рублей бесплатно.\n\n\
         # Возврат\n\nТовар можно вернуть в течение 14 дней при наличии чека.\n\n\
         # Оплата\n\nМы принимаем банковские карты, наличные и переводы.\n\n\
         # Гарантия\n\nНа каждый ремонт действует гарантия шесть месяцев.\n\n\
         # Парковка\n\nБесплатная парковка для клиентов находится во дворе.\n\n\
         # Скидки\n\nСтуденты и пенсионеры получают скидку {discount} процентов.\n\n\
         # Контакты\n\nТелефон филиала: +7 495 000 01 {i:02}.\n",
        n = 3 + i * 4,
        repair = 2000 + i * 250,
        delivery = 300 + i % 3 * 100,
        discount = 5 + i % 3 * 5,
    )
}
