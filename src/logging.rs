//! Log output. `voxd serve` logs to stdout (where systemd's journal takes it); the other
//! commands log to stderr, since their stdout is their result. `text` has colours only on
//! a terminal; when stdout is the journal (`JOURNAL_STREAM` names it) lines carry no
//! timestamp, which journald adds, and start with a `<N>` syslog priority that journald
//! turns into the entry's level. `json` writes one object per line, spans included.

use crate::config::LogFormat;
use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// Where the logs go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Stdout,
    Stderr,
}

/// Installs the global subscriber: `format` is `server.log_format`;
/// verbosity comes from `RUST_LOG`, else `default_filter`.
pub fn init(format: LogFormat, default_filter: &str, output: Output) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let (writer, terminal, journal) = match output {
        Output::Stdout => (
            BoxMakeWriter::new(std::io::stdout),
            std::io::stdout().is_terminal(),
            is_journal(std::io::stdout().as_fd()),
        ),
        Output::Stderr => (
            BoxMakeWriter::new(std::io::stderr),
            std::io::stderr().is_terminal(),
            is_journal(std::io::stderr().as_fd()),
        ),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    if format == LogFormat::Json {
        builder.json().init();
    } else if journal {
        let plain = tracing_subscriber::fmt::format()
            .without_time()
            .with_ansi(false);
        builder
            .with_ansi(false)
            .event_format(Journald(plain))
            .init();
    } else {
        builder.with_ansi(terminal).init();
    }
}

/// Whether `fd` is the stream systemd connected to the journal (`JOURNAL_STREAM` is
/// "device:inode" of it).
fn is_journal(fd: std::os::fd::BorrowedFd<'_>) -> bool {
    let Some(expected) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(meta) = fd
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .and_then(|f| f.metadata())
    else {
        return false;
    };
    expected.to_string_lossy() == format!("{}:{}", meta.dev(), meta.ino())
}

/// A text line prefixed with its syslog priority, as journald reads stdout.
struct Journald<F>(F);

impl<S, N, F> FormatEvent<S, N> for Journald<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        write!(writer, "<{}>", priority(*event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
    }
}

/// The syslog priority journald files a line under.
fn priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}
