//! Property-based fuzzing of the report decoder: no header, delimiter, encoding or row makes
//! it panic; every row it reads is either observations or a refusal naming its line.
//!
//! The case count is proptest's (`PROPTEST_CASES`, 256 unless set); the documented long run
//! (docs/reliability.md) sets `PROPTEST_CASES=100000`.

use chrono::NaiveDate;
use proptest::prelude::*;
use streaming_metrics::report::{FileContext, ReportReader};

/// The headers of every format the reader knows, as real exports write them.
const HEADERS: &[&str] = &[
    "subject,territory,date,metric,value,source,as_of",
    "date,listeners,streams,followers",
    "\"ISRC\",\"Song\",\"Listeners\",\"Streams\",\"Saves\",\"Release Date\",\"Date\"",
    "Reporting Date\tSale Month\tStore\tArtist\tTitle\tISRC\tUPC\tQuantity\tTeam Percentage\tSong/Album\tCountry of Sale\tSongwriter Royalties Withheld\tEarnings (USD)",
    "Sales Period;Posted Date;Store Name;Country Of Sale;Artist;Release Type;Release Title;Song Title;Label;UPC;Optional UPC;TC Song ID;Optional ISRC;Sales Type;# Units Sold;Per Unit Price;Net Sales;Net Sales Currency;Exchange Rate;Total Earned;Currency",
];

/// A field: near-valid values of every column type, and arbitrary text.
fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("US-RC1-76-07839".to_owned()),
        Just("USRC17607839".to_owned()),
        Just("SE".to_owned()),
        Just("QQ".to_owned()),
        Just("2026-11-20".to_owned()),
        Just("2026-02-30".to_owned()),
        Just("2026-09".to_owned()),
        Just("streams".to_owned()),
        Just("-12".to_owned()),
        Just("1.234,5".to_owned()),
        Just("12.480".to_owned()),
        Just("99999999999999999999999".to_owned()),
        Just("NaN".to_owned()),
        Just("\"quoted, with \"\"escapes\"\"\"".to_owned()),
        Just("Spotify (Premium)".to_owned()),
        Just(String::new()),
        "[0-9.,-]{0,24}",
        ".{0,40}",
    ]
}

fn report() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<bool>(),
        0..HEADERS.len(),
        prop_oneof![Just(','), Just(';'), Just('\t')],
        prop::collection::vec(prop::collection::vec(field(), 0..24), 0..8),
        prop::collection::vec(any::<u8>(), 0..32),
    )
        .prop_map(|(bom, header, delimiter, rows, tail)| {
            let mut bytes = Vec::new();
            if bom {
                bytes.extend_from_slice(&[0xEF, 0xBB, 0xBF]);
            }
            bytes.extend_from_slice(HEADERS[header].as_bytes());
            for row in rows {
                bytes.push(b'\n');
                bytes.extend_from_slice(row.join(&delimiter.to_string()).as_bytes());
            }
            // Trailing raw bytes: invalid UTF-8, NULs, a line without its end.
            bytes.extend_from_slice(&tail);
            bytes
        })
}

/// Lines as a CSV reader ends them: `\n`, `\r\n` or a lone `\r`.
fn line_count(bytes: &[u8]) -> u64 {
    let mut lines = 1;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')) {
            lines += 1;
        }
    }
    lines
}

proptest! {
    #[test]
    fn report_rows_never_panic_and_every_refusal_names_its_line(bytes in report()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.csv");
        std::fs::write(&path, &bytes).unwrap();
        let context = FileContext {
            artist: Some(backbone::validate::SpotifyId::new("0TnOYISbd1XYRBk9myaseg").unwrap()),
            date: NaiveDate::from_ymd_opt(2026, 11, 20),
            as_of: None,
        };
        let today = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        // A refused file is an error value, never a panic.
        if let Ok(mut reader) = ReportReader::open(&path, context, today) {
            let lines = line_count(&bytes);
            let mut read = 0;
            while let Some(row) = reader.next_row() {
                read += 1;
                prop_assert!(read <= lines, "more rows than lines");
                let line = match row {
                    Ok(row) => row.line,
                    Err(err) => {
                        prop_assert!(!err.reason.is_empty());
                        err.line
                    }
                };
                prop_assert!((2..=lines).contains(&line), "line {line} of {lines}");
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.csv");
        std::fs::write(&path, &bytes).unwrap();
        let today = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        if let Ok(mut reader) = ReportReader::open(&path, FileContext::default(), today) {
            let mut rows = 0;
            while reader.next_row().is_some() {
                rows += 1;
                prop_assert!(rows <= 512);
            }
        }
    }
}
