//! Report files: format detection from the header, and a streaming reader that turns each
//! row into observations or a clear error with its line number.
//!
//! Formats (the header decides; names are compared lower-cased and trimmed, in any order,
//! extra columns ignored):
//!
//! | format | required columns | optional | each row gives |
//! |---|---|---|---|
//! | canonical | `subject`, `territory`, `date`, `metric`, `value` | `source`, `as_of`, `artist` | one observation |
//! | Spotify for Artists audience timeline | `date`, `listeners`, `streams` | `followers`, `country` | listeners, streams (and followers) of the artist given with the file, GLOBAL unless `country` |
//! | Spotify for Artists songs table | `isrc`, `song` or `title`, `streams` | `listeners`, `saves`, `date`, `country` | streams, listeners, saves of the song on the row's `date` (else the file's date) |
//! | DistroKid statement | `sale month`, `store`, `isrc`, `quantity`, `country of sale` | `earnings (usd)`, `artist` | monthly streams (downloads for iTunes stores) and `revenue_micros` for `distrokid/<store>` |
//! | TuneCore statement | `sales period`, `store name`, `isrc` or `optional isrc`, `# units sold` or `units sold`, `country of sale` | `total earned`, `sales type` | monthly streams (downloads when `sales type` says so) and `revenue_micros` for `tunecore/<store>` |
//!
//! What real exports do and the reader copes with: a UTF-8 BOM; `,`, `;` or tab delimiters
//! (the one most frequent in the header line); quoted fields; decimal commas (in a `;` or tab
//! file, `1,5` is 1.5 and `1.234` is 1234; in any file `1.234,56` and `1,234.56` read by their
//! last separator); hyphenated ISRCs; store names with qualifiers (`Spotify (Premium)`); lines
//! that a statement splits by qualifier are summed, not refused. A line longer than
//! [`MAX_LINE_BYTES`] ends the file with an error (it cannot be a real row), so memory stays
//! bounded whatever the file's size.

use std::collections::HashMap;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use backbone::validate::SpotifyId;

use crate::model::{Metric, Observation, Period, Source, Subject, Territory, normalise_isrc};

/// The longest line a report may have.
pub const MAX_LINE_BYTES: usize = 1 << 20;
/// Rows remembered for duplicate detection within one file (16 bytes each); past this the
/// store's per-key idempotency still keeps a repeated row from counting twice.
pub const MAX_REMEMBERED_ROWS: usize = 2_000_000;

/// A report format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// The project's own `subject,territory,date,metric,value,source`.
    Canonical,
    /// Spotify for Artists: the artist's audience timeline.
    S4aAudience,
    /// Spotify for Artists: the songs table.
    S4aSongs,
    /// A DistroKid statement.
    Distrokid,
    /// A TuneCore statement.
    Tunecore,
}

/// What the file's sender says about it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileContext {
    /// The artist the report belongs to (required by the audience timeline).
    #[serde(default)]
    pub artist: Option<SpotifyId>,
    /// The day a songs table without a `date` column covers.
    #[serde(default)]
    pub date: Option<NaiveDate>,
    /// When the source produced the report (restatements are ordered by it).
    #[serde(default)]
    pub as_of: Option<DateTime<Utc>>,
}

/// Why a whole file is refused.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// It could not be read.
    #[error("cannot read the report: {0}")]
    Io(#[from] std::io::Error),
    /// It has no bytes, or no header line.
    #[error("the report is empty")]
    Empty,
    /// Its header matches no known format.
    #[error(
        "unknown report header {header:?}: expected a canonical CSV (subject, territory, date, metric, value), \
         a Spotify for Artists audience timeline (date, listeners, streams) or songs table (isrc, song, streams), \
         a DistroKid statement (sale month, store, isrc, quantity, country of sale) or a TuneCore statement \
         (sales period, store name, isrc, # units sold, country of sale)"
    )]
    UnknownHeader {
        /// The header as read.
        header: Vec<String>,
    },
    /// The format needs something the sender did not give.
    #[error("a {format:?} report needs {what}")]
    MissingContext {
        /// The format.
        format: Format,
        /// What is missing.
        what: &'static str,
    },
}

/// One refused row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowError {
    /// The 1-based line.
    pub line: u64,
    /// What is wrong, for a person to read.
    pub reason: String,
}

/// One read row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The 1-based line.
    pub line: u64,
    /// Its observations.
    pub observations: Vec<Observation>,
    /// Whether rows with the same key in this file add up (statements split by qualifier).
    pub summing: bool,
}

/// Caps the bytes between two newlines, so a file without line breaks cannot make the CSV
/// reader buffer gigabytes, and hands the reader LF line ends only (CRLF and the lone CR of
/// old spreadsheet exports become LF), so line numbers count every line ending alike.
struct LineCap<R> {
    inner: R,
    since_newline: usize,
    /// The last byte read was a CR, already turned into LF: an LF next is its pair.
    after_cr: bool,
}

impl<R: Read> Read for LineCap<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        // Compacts in place: CRLF becomes LF, a lone CR becomes LF.
        let mut out = 0;
        for i in 0..n {
            let b = buf[i];
            if b == b'\n' && self.after_cr {
                self.after_cr = false;
                continue;
            }
            self.after_cr = b == b'\r';
            let b = if b == b'\r' { b'\n' } else { b };
            if b == b'\n' {
                self.since_newline = 0;
            } else {
                self.since_newline += 1;
                if self.since_newline > MAX_LINE_BYTES {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("a line is longer than {MAX_LINE_BYTES} bytes"),
                    ));
                }
            }
            buf[out] = b;
            out += 1;
        }
        if out == 0 && n > 0 {
            // The whole read was the LF of a CRLF split across reads: read on, 0 means the end.
            return self.read(buf);
        }
        Ok(out)
    }
}

/// Column positions of the detected format.
#[derive(Debug, Clone, Default)]
struct Columns {
    subject: Option<usize>,
    territory: Option<usize>,
    date: Option<usize>,
    metric: Option<usize>,
    value: Option<usize>,
    source: Option<usize>,
    as_of: Option<usize>,
    artist: Option<usize>,
    listeners: Option<usize>,
    streams: Option<usize>,
    followers: Option<usize>,
    saves: Option<usize>,
    store: Option<usize>,
    quantity: Option<usize>,
    earnings: Option<usize>,
    sales_type: Option<usize>,
}

/// A streaming reader of one report.
pub struct ReportReader {
    format: Format,
    columns: Columns,
    context: FileContext,
    decimal_comma: bool,
    today: NaiveDate,
    records: csv::ByteRecordsIntoIter<LineCap<BufReader<File>>>,
    seen_rows: HashMap<u64, u64>,
    seen_keys: HashMap<u64, u64>,
    finished: bool,
}

fn hash_of(parts: &[&[u8]]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for p in parts {
        p.hash(&mut h);
    }
    h.finish()
}

fn detect_delimiter(header: &[u8]) -> u8 {
    let count = |d: u8| header.iter().filter(|&&b| b == d).count();
    [b',', b';', b'\t']
        .into_iter()
        .max_by_key(|&d| (count(d), d == b','))
        .unwrap_or(b',')
}

fn detect(names: &[String]) -> Option<(Format, Columns)> {
    let find = |wanted: &[&str]| names.iter().position(|n| wanted.contains(&n.as_str()));
    let mut c = Columns {
        subject: find(&["subject"]),
        territory: find(&["territory", "country", "country of sale"]),
        date: find(&["date", "day"]),
        metric: find(&["metric"]),
        value: find(&["value"]),
        source: find(&["source"]),
        as_of: find(&["as_of", "as of"]),
        artist: find(&["artist_id", "artist"]),
        listeners: find(&["listeners"]),
        streams: find(&["streams"]),
        followers: find(&["followers"]),
        saves: find(&["saves"]),
        ..Columns::default()
    };
    let isrc = find(&["isrc", "optional isrc"]);
    if c.subject.is_some()
        && c.territory.is_some()
        && c.date.is_some()
        && c.metric.is_some()
        && c.value.is_some()
    {
        return Some((Format::Canonical, c));
    }
    if let (Some(month), Some(store), Some(isrc), Some(qty), Some(country)) = (
        find(&["sale month"]),
        find(&["store"]),
        isrc,
        find(&["quantity"]),
        find(&["country of sale"]),
    ) {
        c.date = Some(month);
        c.store = Some(store);
        c.subject = Some(isrc);
        c.quantity = Some(qty);
        c.territory = Some(country);
        c.earnings = find(&["earnings (usd)", "earnings"]);
        return Some((Format::Distrokid, c));
    }
    if let (Some(period), Some(store), Some(isrc), Some(qty), Some(country)) = (
        find(&["sales period"]),
        find(&["store name"]),
        isrc,
        find(&["# units sold", "units sold"]),
        find(&["country of sale"]),
    ) {
        c.date = Some(period);
        c.store = Some(store);
        c.subject = Some(isrc);
        c.quantity = Some(qty);
        c.territory = Some(country);
        c.earnings = find(&["total earned"]);
        c.sales_type = find(&["sales type"]);
        return Some((Format::Tunecore, c));
    }
    if let (Some(isrc), Some(_), Some(_)) = (isrc, find(&["song", "title"]), c.streams) {
        c.subject = Some(isrc);
        return Some((Format::S4aSongs, c));
    }
    if c.date.is_some() && c.listeners.is_some() && c.streams.is_some() {
        return Some((Format::S4aAudience, c));
    }
    None
}

impl ReportReader {
    /// Opens the report at `path`, detects its format from the header and readies the rows.
    pub fn open(path: &Path, context: FileContext, today: NaiveDate) -> Result<Self, FileError> {
        let mut file = File::open(path)?;
        let mut head = vec![0u8; 64 * 1024];
        let mut filled = 0;
        while filled < head.len() {
            let n = file.read(&mut head[filled..])?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        head.truncate(filled);
        let bom = if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
            3
        } else {
            0
        };
        let body = &head[bom..];
        if body.iter().all(|b| b.is_ascii_whitespace()) {
            return Err(FileError::Empty);
        }
        let header_line = body.split(|&b| b == b'\n').next().unwrap_or(body);
        let delimiter = detect_delimiter(header_line);
        file.seek(SeekFrom::Start(bom as u64))?;
        let capped = LineCap {
            inner: BufReader::new(file),
            since_newline: 0,
            after_cr: false,
        };
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(true)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(capped);
        let header = reader
            .byte_headers()
            .map_err(|e| FileError::Io(std::io::Error::other(e)))?
            .clone();
        let names: Vec<String> = header
            .iter()
            .map(|h| String::from_utf8_lossy(h).trim().to_ascii_lowercase())
            .collect();
        let (format, columns) = detect(&names).ok_or(FileError::UnknownHeader { header: names })?;
        if format == Format::S4aAudience && context.artist.is_none() {
            return Err(FileError::MissingContext {
                format,
                what: "the artist it belongs to (the export does not name it)",
            });
        }
        if format == Format::S4aSongs && columns.date.is_none() && context.date.is_none() {
            return Err(FileError::MissingContext {
                format,
                what: "the day it covers (it has no date column)",
            });
        }
        Ok(Self {
            format,
            columns,
            context,
            decimal_comma: delimiter != b',',
            today,
            records: reader.into_byte_records(),
            seen_rows: HashMap::new(),
            seen_keys: HashMap::new(),
            finished: false,
        })
    }

    /// The detected format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The next row, or `None` at the end. A row that cannot be read is an `Err` with its
    /// line; reading goes on after it (except after an I/O error or an overlong line).
    pub fn next_row(&mut self) -> Option<Result<Row, RowError>> {
        if self.finished {
            return None;
        }
        let record = match self.records.next()? {
            Ok(r) => r,
            Err(err) => {
                let line = err.position().map_or(0, |p| p.line());
                if matches!(err.kind(), csv::ErrorKind::Io(_)) {
                    self.finished = true;
                }
                return Some(Err(RowError {
                    line,
                    reason: format!("unreadable: {err}"),
                }));
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        Some(self.row(line, &record))
    }

    fn row(&mut self, line: u64, record: &csv::ByteRecord) -> Result<Row, RowError> {
        let fail = |reason: String| RowError { line, reason };
        if record.iter().all(|f| f.is_empty()) {
            return Err(fail("empty row".to_owned()));
        }
        let parts: Vec<&[u8]> = record.iter().collect();
        let row_hash = hash_of(&parts);
        if let Some(first) = self.seen_rows.get(&row_hash) {
            return Err(fail(format!("duplicate of line {first}")));
        }
        if self.seen_rows.len() < MAX_REMEMBERED_ROWS {
            self.seen_rows.insert(row_hash, line);
        }
        let field = |i: Option<usize>, name: &str| -> Result<String, String> {
            let i = i.ok_or_else(|| format!("no {name} column"))?;
            let raw = record
                .get(i)
                .ok_or_else(|| format!("{name} is missing (short row)"))?;
            let s = std::str::from_utf8(raw).map_err(|_| format!("{name} is not UTF-8"))?;
            Ok(s.trim().to_owned())
        };
        let optional = |i: Option<usize>| -> Option<String> {
            i.and_then(|i| record.get(i))
                .and_then(|b| std::str::from_utf8(b).ok())
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        };
        let dc = self.decimal_comma;
        let observations = (|| -> Result<Vec<Observation>, String> {
            let as_of = self.context.as_of;
            let obs = |subject: Subject,
                       territory: Territory,
                       date: NaiveDate,
                       metric: Metric,
                       value: i64,
                       source: Source,
                       period: Period| Observation {
                subject,
                territory,
                date,
                metric,
                value,
                source,
                as_of,
                artist: self.context.artist.clone(),
                period,
            };
            let territory_or_global = |i: Option<usize>| -> Result<Territory, String> {
                match optional(i) {
                    Some(t) => Territory::parse(&t),
                    None => Ok(Territory::global()),
                }
            };
            // A Spotify for Artists row: one daily observation per metric column the table has.
            let day_counts = |subject: Subject,
                              territory: Territory,
                              date: NaiveDate,
                              columns: [(Option<usize>, Metric, &str); 3]|
             -> Result<Vec<Observation>, String> {
                let source = Source::parse("spotify_for_artists")?;
                let mut out = Vec::new();
                for (col, metric, name) in columns {
                    if col.is_some() {
                        let v = parse_count(&field(col, name)?, dc)
                            .map_err(|e| format!("{name}: {e}"))?;
                        out.push(obs(
                            subject.clone(),
                            territory.clone(),
                            date,
                            metric,
                            v,
                            source.clone(),
                            Period::Day,
                        ));
                    }
                }
                Ok(out)
            };
            match self.format {
                Format::Canonical => {
                    let subject = Subject::parse(&field(self.columns.subject, "subject")?)?;
                    let territory = Territory::parse(&field(self.columns.territory, "territory")?)?;
                    let date = parse_date(&field(self.columns.date, "date")?)?;
                    let metric = Metric::parse(&field(self.columns.metric, "metric")?)?;
                    let value = parse_count(&field(self.columns.value, "value")?, dc)?;
                    let source = match optional(self.columns.source) {
                        Some(s) => Source::parse(&s)?,
                        None => Source::parse("canonical")?,
                    };
                    let mut o = obs(subject, territory, date, metric, value, source, Period::Day);
                    if let Some(a) = optional(self.columns.as_of) {
                        o.as_of = Some(
                            DateTime::parse_from_rfc3339(&a)
                                .map_err(|_| format!("as_of {a:?} is not an RFC 3339 time"))?
                                .with_timezone(&Utc),
                        );
                    }
                    if let Some(a) = optional(self.columns.artist) {
                        o.artist = Some(SpotifyId::new(a.trim_start_matches("spotify:artist:"))?);
                    }
                    Ok(vec![o])
                }
                Format::S4aAudience => {
                    let artist = self
                        .context
                        .artist
                        .clone()
                        .ok_or_else(|| "no artist".to_owned())?;
                    let subject = Subject::Artist(artist);
                    let territory = territory_or_global(self.columns.territory)?;
                    let date = parse_date(&field(self.columns.date, "date")?)?;
                    day_counts(
                        subject,
                        territory,
                        date,
                        [
                            (self.columns.listeners, Metric::Listeners, "listeners"),
                            (self.columns.streams, Metric::Streams, "streams"),
                            (self.columns.followers, Metric::Followers, "followers"),
                        ],
                    )
                }
                Format::S4aSongs => {
                    let subject =
                        Subject::Isrc(normalise_isrc(&field(self.columns.subject, "isrc")?)?);
                    let territory = territory_or_global(self.columns.territory)?;
                    let date = match optional(self.columns.date) {
                        Some(d) => parse_date(&d)?,
                        None => self.context.date.ok_or_else(|| "no date".to_owned())?,
                    };
                    day_counts(
                        subject,
                        territory,
                        date,
                        [
                            (self.columns.streams, Metric::Streams, "streams"),
                            (self.columns.listeners, Metric::Listeners, "listeners"),
                            (self.columns.saves, Metric::Saves, "saves"),
                        ],
                    )
                }
                Format::Distrokid | Format::Tunecore => {
                    let family = if self.format == Format::Distrokid {
                        "distrokid"
                    } else {
                        "tunecore"
                    };
                    let store = field(self.columns.store, "store")?;
                    let source = Source::store(family, &store)?;
                    let subject =
                        Subject::Isrc(normalise_isrc(&field(self.columns.subject, "isrc")?)?);
                    let territory =
                        Territory::parse(&field(self.columns.territory, "country of sale")?)?;
                    let date = parse_month(&field(self.columns.date, "sale month")?)?;
                    let qty = parse_count(&field(self.columns.quantity, "quantity")?, dc)
                        .map_err(|e| format!("quantity: {e}"))?;
                    let download = match optional(self.columns.sales_type) {
                        Some(t) => t.to_ascii_lowercase().contains("download"),
                        None => source.as_str().contains("itunes"),
                    };
                    let metric = if download {
                        Metric::Downloads
                    } else {
                        Metric::Streams
                    };
                    let mut out = vec![obs(
                        subject.clone(),
                        territory.clone(),
                        date,
                        metric,
                        qty,
                        source.clone(),
                        Period::Month,
                    )];
                    if let Some(e) = optional(self.columns.earnings) {
                        let micros = parse_micros(&e, dc).map_err(|e| format!("earnings: {e}"))?;
                        out.push(obs(
                            subject,
                            territory,
                            date,
                            Metric::RevenueMicros,
                            micros,
                            source,
                            Period::Month,
                        ));
                    }
                    Ok(out)
                }
            }
        })()
        .map_err(fail)?;
        for o in &observations {
            o.check(self.today)
                .map_err(|r| RowError { line, reason: r })?;
        }
        let summing = matches!(self.format, Format::Distrokid | Format::Tunecore);
        if !summing {
            for o in &observations {
                let key = hash_of(&[
                    o.subject.to_string().as_bytes(),
                    o.territory.as_str().as_bytes(),
                    o.date.to_string().as_bytes(),
                    o.metric.as_str().as_bytes(),
                    o.source.as_str().as_bytes(),
                ]);
                if let Some(first) = self.seen_keys.get(&key) {
                    return Err(RowError {
                        line,
                        reason: format!(
                            "{} {} {} {} in {} was already given on line {first}",
                            o.subject, o.metric, o.territory, o.date, o.source
                        ),
                    });
                }
                if self.seen_keys.len() < MAX_REMEMBERED_ROWS {
                    self.seen_keys.insert(key, line);
                }
            }
        }
        Ok(Row {
            line,
            observations,
            summing,
        })
    }
}

fn clean_number(s: &str) -> String {
    s.trim()
        .trim_matches('"')
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '\u{a0}' && *c != '\'' && *c != '$')
        .collect()
}

fn is_grouped(s: &str, sep: char) -> bool {
    let mut groups = s.split(sep);
    let first = groups.next().unwrap_or("");
    (1..=3).contains(&first.len())
        && first.chars().all(|c| c.is_ascii_digit())
        && groups.clone().count() >= 1
        && groups.all(|g| g.len() == 3 && g.chars().all(|c| c.is_ascii_digit()))
}

/// Reads a decimal number by the rules in the module comment; `decimal_comma` is true in
/// files delimited by `;` or tab.
pub fn parse_decimal(raw: &str, decimal_comma: bool) -> Result<f64, String> {
    let s = clean_number(raw);
    if s.is_empty() {
        return Err("is empty".to_owned());
    }
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest.to_owned()),
        None => (false, s.clone()),
    };
    let normalised = match (digits.rfind('.'), digits.rfind(',')) {
        (Some(d), Some(c)) if c > d => digits.replace('.', "").replace(',', "."),
        (Some(_), Some(_)) => digits.replace(',', ""),
        (None, Some(_)) if !decimal_comma && is_grouped(&digits, ',') => digits.replace(',', ""),
        (None, Some(_)) => digits.replace(',', "."),
        (Some(_), None) if decimal_comma && is_grouped(&digits, '.') => digits.replace('.', ""),
        _ => digits,
    };
    let value: f64 = normalised
        .parse()
        .map_err(|_| format!("{raw:?} is not a number"))?;
    if !value.is_finite() {
        return Err(format!("{raw:?} is not a finite number"));
    }
    Ok(if negative { -value } else { value })
}

/// Reads a count: a non-negative whole number.
pub fn parse_count(raw: &str, decimal_comma: bool) -> Result<i64, String> {
    let v = parse_decimal(raw, decimal_comma)?;
    if v < 0.0 {
        return Err(format!("a count cannot be negative, got {raw:?}"));
    }
    if v.fract() != 0.0 {
        return Err(format!("a count is a whole number, got {raw:?}"));
    }
    if v > 1e15 {
        return Err(format!("{raw:?} is too large for a count"));
    }
    Ok(v as i64)
}

/// Reads an amount of money as millionths (non-negative).
pub fn parse_micros(raw: &str, decimal_comma: bool) -> Result<i64, String> {
    let v = parse_decimal(raw, decimal_comma)?;
    if v < 0.0 {
        return Err(format!(
            "a negative amount ({raw:?}, a chargeback) is not stored"
        ));
    }
    if v > 1e12 {
        return Err(format!("{raw:?} is too large"));
    }
    Ok((v * 1e6).round() as i64)
}

/// Reads a day: `YYYY-MM-DD` or `YYYY/MM/DD`; an impossible date is named as such.
pub fn parse_date(s: &str) -> Result<NaiveDate, String> {
    let t = s.trim();
    for fmt in ["%Y-%m-%d", "%Y/%m/%d"] {
        if let Ok(d) = NaiveDate::parse_from_str(t, fmt) {
            return Ok(d);
        }
    }
    let shaped = t.len() == 10
        && t.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-' || b == b'/'
            } else {
                b.is_ascii_digit()
            }
        });
    Err(if shaped {
        format!("{t:?} is not a calendar date")
    } else {
        format!("{t:?} is not a date (YYYY-MM-DD)")
    })
}

/// Reads a statement month: `YYYY-MM`, `YYYY-MM-DD` (its month), `MM/YYYY` or `Mon YYYY`;
/// the result is the month's first day.
pub fn parse_month(s: &str) -> Result<NaiveDate, String> {
    let t = s.trim();
    if let Ok(d) = parse_date(t) {
        return d
            .with_day0(0)
            .ok_or_else(|| format!("{t:?} has no first day"));
    }
    let first = format!("{t}-01");
    if let Ok(d) = NaiveDate::parse_from_str(&first, "%Y-%m-%d") {
        return Ok(d);
    }
    if let Some((m, y)) = t.split_once('/')
        && let Ok(d) = NaiveDate::parse_from_str(&format!("{y}-{m}-01"), "%Y-%m-%d")
    {
        return Ok(d);
    }
    if let Ok(d) = NaiveDate::parse_from_str(&format!("01 {t}"), "%d %b %Y") {
        return Ok(d);
    }
    Err(format!("{t:?} is not a month (YYYY-MM)"))
}

use chrono::Datelike;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 30).expect("valid date")
    }

    fn write(content: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        f.write_all(content).expect("write");
        f
    }

    fn read_all(r: &mut ReportReader) -> (Vec<Row>, Vec<RowError>) {
        let (mut ok, mut bad) = (Vec::new(), Vec::new());
        while let Some(row) = r.next_row() {
            match row {
                Ok(row) => ok.push(row),
                Err(e) => bad.push(e),
            }
        }
        (ok, bad)
    }

    #[test]
    fn numbers_follow_the_separator_rules() {
        assert_eq!(parse_count("1,234", false), Ok(1234));
        assert_eq!(parse_count("1.234", true), Ok(1234));
        assert_eq!(parse_decimal("0,0123", true), Ok(0.0123));
        assert_eq!(parse_decimal("1.234,56", true), Ok(1234.56));
        assert_eq!(parse_decimal("1,234.56", false), Ok(1234.56));
        assert!(parse_count("-5", false).unwrap_err().contains("negative"));
        assert!(
            parse_count("abc", false)
                .unwrap_err()
                .contains("not a number")
        );
        assert_eq!(parse_micros("0,004512", true), Ok(4512));
    }

    #[test]
    fn dates_and_months() {
        assert!(
            parse_date("2026-02-30")
                .unwrap_err()
                .contains("not a calendar date")
        );
        assert_eq!(
            parse_month("2026-10"),
            Ok(NaiveDate::from_ymd_opt(2026, 10, 1).expect("date"))
        );
        assert_eq!(
            parse_month("Oct 2026"),
            Ok(NaiveDate::from_ymd_opt(2026, 10, 1).expect("date"))
        );
        assert_eq!(
            parse_month("10/2026"),
            Ok(NaiveDate::from_ymd_opt(2026, 10, 1).expect("date"))
        );
    }

    /// The same report with LF, CRLF and lone-CR line ends gives the same rows and the same
    /// line numbers, also when a CRLF is split between two reads.
    #[test]
    fn every_line_ending_numbers_lines_alike() {
        let lines = [
            "subject,territory,date,metric,value,source",
            "USRC17607839,SE,2026-11-01,streams,12,api",
            "USRC17607839,QQ,2026-11-01,streams,5,api",
            "\"USRC17607839\",NO,2026-11-01,streams,7,api",
        ];
        let mut seen = Vec::new();
        for end in ["\n", "\r\n", "\r"] {
            let f = write(lines.join(end).as_bytes());
            let mut r =
                ReportReader::open(f.path(), FileContext::default(), today()).expect("opens");
            let (ok, bad) = read_all(&mut r);
            let ok: Vec<(u64, i64)> = ok
                .iter()
                .map(|r| (r.line, r.observations[0].value))
                .collect();
            let bad: Vec<u64> = bad.iter().map(|e| e.line).collect();
            assert_eq!(
                (ok.clone(), bad.clone()),
                (vec![(2, 12), (4, 7)], vec![3]),
                "{end:?}"
            );
            seen.push((ok, bad));
        }

        // One byte per read: every CRLF is split between two reads.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let Some((&b, rest)) = self.0.split_first() else {
                    return Ok(0);
                };
                buf[0] = b;
                self.0 = rest;
                Ok(1)
            }
        }
        let text = "a\r\nb\rc\r\n\r\nd\r";
        let mut capped = LineCap {
            inner: Trickle(text.as_bytes()),
            since_newline: 0,
            after_cr: false,
        };
        let mut out = String::new();
        capped.read_to_string(&mut out).expect("reads");
        assert_eq!(out, "a\nb\nc\n\nd\n");
    }

    #[test]
    fn bom_semicolons_and_bad_rows_with_line_numbers() {
        let f = write(
            "\u{feff}subject;territory;date;metric;value;source\n\
             US-RC1-76-07839;SE;2026-11-01;streams;1.200;api\n\
             USRC17607839;QQ;2026-11-01;streams;5;api\n\
             USRC17607839;SE;2026-02-30;streams;5;api\n\
             USRC17607839;NO;2026-11-01;streams;-3;api\n\
             USRC17607839;NO;2026-11-01;streams;abc;api\n\
             US-RC1-76-07839;SE;2026-11-01;streams;1.200;api\n\
             USRC17607839;SE;2026-11-01;streams;7;api\n\
             USRC17607839;DK;2026-11-01;streams;8;api\n"
                .as_bytes(),
        );
        let mut r = ReportReader::open(f.path(), FileContext::default(), today()).expect("opens");
        assert_eq!(r.format(), Format::Canonical);
        let (ok, bad) = read_all(&mut r);
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0].observations[0].value, 1200);
        assert_eq!(
            ok[0].observations[0].subject.to_string(),
            "isrc:USRC17607839"
        );
        let lines: Vec<u64> = bad.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 4, 5, 6, 7, 8]);
        assert!(bad[0].reason.contains("QQ"));
        assert!(bad[1].reason.contains("calendar"));
        assert!(bad[2].reason.contains("negative"));
        assert!(bad[4].reason.contains("duplicate of line 2"));
        assert!(bad[5].reason.contains("line 2"));
    }

    #[test]
    fn unknown_header_and_empty_file_are_refused_whole() {
        let f = write(b"foo,bar\n1,2\n");
        let err = ReportReader::open(f.path(), FileContext::default(), today()).err();
        assert!(matches!(err, Some(FileError::UnknownHeader { .. })));
        let e = write(b"");
        assert!(matches!(
            ReportReader::open(e.path(), FileContext::default(), today()).err(),
            Some(FileError::Empty)
        ));
    }

    #[test]
    fn an_overlong_line_stops_with_an_error_not_an_allocation() {
        let mut content = b"subject,territory,date,metric,value\n".to_vec();
        content.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES + 10));
        let f = write(&content);
        let mut r = ReportReader::open(f.path(), FileContext::default(), today()).expect("opens");
        let (ok, bad) = read_all(&mut r);
        assert!(ok.is_empty());
        assert_eq!(bad.len(), 1);
        assert!(bad[0].reason.contains("longer than"), "{}", bad[0].reason);
    }

    #[test]
    fn statements_sum_qualifier_lines_and_read_decimal_commas() {
        let f = write(
            "Reporting Date\tSale Month\tStore\tArtist\tTitle\tISRC\tUPC\tQuantity\tTeam Percentage\tSong/Album\tCountry of Sale\tSongwriter Royalties Withheld\tEarnings (USD)\n\
             2026-11-05\t2026-09\tSpotify (Premium)\tNova\tLights\tUS-RC1-76-07839\t0602\t1200\t100\tSong\tSE\t0\t4,20\n\
             2026-11-05\t2026-09\tSpotify (Free)\tNova\tLights\tUS-RC1-76-07839\t0602\t300\t100\tSong\tSE\t0\t0,30\n"
                .as_bytes(),
        );
        let mut r = ReportReader::open(f.path(), FileContext::default(), today()).expect("opens");
        assert_eq!(r.format(), Format::Distrokid);
        let (ok, bad) = read_all(&mut r);
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(ok.len(), 2);
        assert!(ok.iter().all(|r| r.summing));
        assert_eq!(ok[0].observations[0].source.as_str(), "distrokid/spotify");
        assert_eq!(ok[0].observations[1].value, 4_200_000);
        assert_eq!(
            ok[1].observations[0].date,
            NaiveDate::from_ymd_opt(2026, 9, 1).expect("date")
        );
    }
}
