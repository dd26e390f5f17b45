//! The grounding verifier on generated adversarial drafts: clean drafts rendered from random
//! fact sheets in each language, then one figure changed in one way (a digit off by one, the
//! value off by one, the unit swapped, the number spelled out, another language's format, a
//! shifted date, a flipped or scaled percentage) or an invented figure added. Every
//! adversarial draft must be rejected; every clean draft accepted (false rejections counted).

use ai_content_generation::allowed_forms;
use ai_content_generation::facts::{Fact, FactSheet, FactValue, PartialDate};
use ai_content_generation::lang::{COUNTED_UNITS, LANGUAGES, Language, Unit};
use ai_content_generation::render::render;
use ai_content_generation::request::Kind;
use ai_content_generation::verify::verify;
use ai_content_generation::writer;
use chrono::{Datelike, NaiveDate};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn fact(id: &str, value: FactValue, unit: Unit) -> Fact {
    Fact {
        id: id.into(),
        label: id.into(),
        value,
        unit,
        source: "test".into(),
        as_of: NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
        priority: 1,
    }
}

fn random_sheet(rng: &mut StdRng) -> FactSheet {
    let followers = match rng.random_range(0..3) {
        0 => rng.random_range(2..1_000u64),
        1 => rng.random_range(1_000..1_000_000u64),
        _ => rng.random_range(1_000_000..5_000_000_000u64),
    };
    let date = NaiveDate::from_ymd_opt(
        rng.random_range(2000..2027),
        rng.random_range(1..=12),
        rng.random_range(1..=28),
    )
    .unwrap();
    let names = [
        "Nova Lane",
        "Les Ondes",
        "Kalte Sonne",
        "Midnight Drive",
        "Aurora",
    ];
    let genres = ["indie pop", "electro, house", "chanson", "techno", "folk"];
    let titles = ["Blue Hour", "Lumière", "Nachtflug", "Tidal", "Echoes"];
    FactSheet {
        facts: vec![
            fact(
                "artist.name",
                FactValue::Text {
                    text: names[rng.random_range(0..names.len())].into(),
                },
                Unit::None,
            ),
            fact(
                "artist.genres",
                FactValue::Text {
                    text: genres[rng.random_range(0..genres.len())].into(),
                },
                Unit::None,
            ),
            fact(
                "artist.followers",
                FactValue::Count { value: followers },
                Unit::Followers,
            ),
            fact(
                "artist.popularity",
                FactValue::Score {
                    value: rng.random_range(1..=100),
                },
                Unit::Popularity,
            ),
            fact(
                "release.0.name",
                FactValue::Text {
                    text: titles[rng.random_range(0..titles.len())].into(),
                },
                Unit::None,
            ),
            fact(
                "release.0.date",
                FactValue::Date {
                    date: PartialDate::Day { date },
                },
                Unit::None,
            ),
            fact(
                "track.0.title",
                FactValue::Text {
                    text: titles[rng.random_range(0..titles.len())].into(),
                },
                Unit::None,
            ),
            fact(
                "track.0.tempo",
                FactValue::Decimal {
                    value: f64::from(rng.random_range(60..200u32)),
                    decimals: 0,
                },
                Unit::Bpm,
            ),
            fact(
                "track.0.loudness",
                FactValue::Decimal {
                    value: -f64::from(rng.random_range(40..200u32)) / 10.0,
                    decimals: 1,
                },
                Unit::Lufs,
            ),
            fact(
                "track.0.duration",
                FactValue::Duration {
                    seconds: rng.random_range(90..400),
                },
                Unit::None,
            ),
            fact(
                "growth",
                FactValue::Percent {
                    value: f64::from(rng.random_range(-500..3000i32)) / 10.0,
                },
                Unit::None,
            ),
        ],
    }
}

fn extra(lang: Language) -> &'static str {
    match lang {
        Language::En => " It runs {{track.0.duration}} and is mastered to {{track.0.loudness}}.",
        Language::Fr => " Il dure {{track.0.duration}}, masterisé à {{track.0.loudness}}.",
        Language::De => {
            " Er dauert {{track.0.duration}} und ist auf {{track.0.loudness}} gemastert."
        }
    }
}

const UNITS_EN: [&str; 3] = ["ones", "tens", "hundreds"];

fn spell_below_1000(n: u64, lang: Language) -> String {
    let en = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    let en_tens = [
        "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
    ];
    let fr = [
        "zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf", "dix",
        "onze", "douze", "treize", "quatorze", "quinze", "seize", "dix-sept", "dix-huit",
        "dix-neuf",
    ];
    let fr_tens = [
        "",
        "",
        "vingt",
        "trente",
        "quarante",
        "cinquante",
        "soixante",
        "soixante",
        "quatre-vingt",
        "quatre-vingt",
    ];
    let de = [
        "null",
        "eins",
        "zwei",
        "drei",
        "vier",
        "fünf",
        "sechs",
        "sieben",
        "acht",
        "neun",
        "zehn",
        "elf",
        "zwölf",
        "dreizehn",
        "vierzehn",
        "fünfzehn",
        "sechzehn",
        "siebzehn",
        "achtzehn",
        "neunzehn",
    ];
    let de_tens = [
        "", "", "zwanzig", "dreißig", "vierzig", "fünfzig", "sechzig", "siebzig", "achtzig",
        "neunzig",
    ];
    let (h, rest) = (n / 100, n % 100);
    let small = |r: u64| -> String {
        let r = r as usize;
        match lang {
            Language::En if r < 20 => en[r].into(),
            Language::En => match r % 10 {
                0 => en_tens[r / 10].into(),
                u => format!("{}-{}", en_tens[r / 10], en[u]),
            },
            Language::Fr if r < 20 => fr[r].into(),
            Language::Fr => {
                let t = r / 10;
                let u = if t == 7 || t == 9 {
                    r % 10 + 10
                } else {
                    r % 10
                };
                match u {
                    0 => fr_tens[t].into(),
                    1 if t != 8 => format!("{}-et-un", fr_tens[t]),
                    _ => format!("{}-{}", fr_tens[t], fr[u]),
                }
            }
            Language::De if r < 20 => de[r].into(),
            Language::De => match r % 10 {
                0 => de_tens[r / 10].into(),
                1 => format!("einund{}", de_tens[r / 10]),
                u => format!("{}und{}", de[u], de_tens[r / 10]),
            },
        }
    };
    let mut out = String::new();
    if h > 0 {
        out.push_str(&match lang {
            Language::En => format!("{} hundred", en[h as usize]),
            Language::Fr if h == 1 => "cent".into(),
            Language::Fr => format!("{} cents", fr[h as usize]),
            Language::De => format!("{}hundert", if h == 1 { "ein" } else { de[h as usize] }),
        });
        if rest > 0 {
            out.push(if lang == Language::De { '\0' } else { ' ' });
        }
    }
    if rest > 0 || h == 0 {
        out.push_str(&small(rest));
    }
    let _ = UNITS_EN;
    out.replace('\0', "")
}

fn spell(n: u64, lang: Language) -> String {
    if n >= 1_000_000 {
        let m = n / 1_000_000;
        let head = spell(m.min(999_999), lang);
        return match lang {
            Language::En => format!("{head} million"),
            Language::Fr => format!("{head} millions"),
            Language::De => format!("{head} Millionen"),
        };
    }
    if n >= 1000 {
        let (t, r) = (n / 1000, n % 1000);
        let head = match lang {
            Language::En => format!("{} thousand", spell_below_1000(t, lang)),
            Language::Fr if t == 1 => "mille".into(),
            Language::Fr => format!("{} mille", spell_below_1000(t, lang)),
            Language::De => format!("{}tausend", spell_below_1000(t, lang)),
        };
        if r == 0 {
            return head;
        }
        let sep = if lang == Language::De { "" } else { " " };
        return format!("{head}{sep}{}", spell_below_1000(r, lang));
    }
    spell_below_1000(n, lang)
}

/// One adversarial variant of `form` (the written form of `fact` in `lang`), if the kind of
/// change applies to it.
fn mutate(rng: &mut StdRng, f: &Fact, form: &str, lang: Language, kind: usize) -> Option<String> {
    let other = LANGUAGES
        [(LANGUAGES.iter().position(|l| *l == lang).unwrap() + 1 + rng.random_range(0..2)) % 3];
    match kind {
        // One digit off by one.
        0 => {
            let digits: Vec<usize> = form
                .char_indices()
                .filter(|(_, c)| c.is_ascii_digit())
                .map(|(i, _)| i)
                .collect();
            let at = *digits.get(rng.random_range(0..digits.len().max(1)))?;
            let d = form.as_bytes()[at] - b'0';
            let nd = if d == 9 || (d > 0 && rng.random_bool(0.5)) {
                d - 1
            } else {
                d + 1
            };
            let mut s = form.to_owned();
            s.replace_range(at..at + 1, &nd.to_string());
            Some(s)
        }
        // The value off by one, rendered properly.
        1 => {
            let mut g = f.clone();
            let delta = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
            g.value = match f.value {
                FactValue::Count { value } => FactValue::Count {
                    value: (value as f64 + delta).max(0.0) as u64,
                },
                FactValue::Decimal { value, decimals } => FactValue::Decimal {
                    value: value + delta / 10f64.powi(i32::from(decimals)),
                    decimals,
                },
                FactValue::Score { value } => FactValue::Score {
                    value: if value == 100 { 99 } else { value + 1 },
                },
                FactValue::Duration { seconds } => FactValue::Duration {
                    seconds: seconds + 1,
                },
                FactValue::Percent { value } => FactValue::Percent {
                    value: value + delta / 10.0,
                },
                _ => return None,
            };
            Some(g.render(lang))
        }
        // Unit swapped.
        2 => {
            let noun = f.unit.noun(lang, false)?;
            let replacement = match f.unit {
                Unit::Bpm => "LUFS".to_owned(),
                Unit::Lufs => "dB".to_owned(),
                Unit::Popularity => "%".to_owned(),
                u => {
                    let others: Vec<Unit> = COUNTED_UNITS.into_iter().filter(|x| *x != u).collect();
                    others[rng.random_range(0..others.len())]
                        .noun(lang, false)?
                        .to_owned()
                }
            };
            let base = form.strip_suffix(noun)?;
            Some(format!("{base}{replacement}"))
        }
        // Spelled out.
        3 => {
            let n = match f.value {
                FactValue::Count { value } => value,
                FactValue::Score { value } => u64::from(value),
                FactValue::Decimal { value, .. } => value.abs().round() as u64,
                _ => return None,
            };
            let noun = f
                .unit
                .noun(lang, n == 1)
                .map(|u| format!(" {u}"))
                .unwrap_or_default();
            Some(format!("{}{noun}", spell(n, lang)))
        }
        // Another language's number or date format.
        4 => {
            let mut g = f.clone();
            if let FactValue::Date {
                date: PartialDate::Day { date },
            } = f.value
            {
                return Some(match rng.random_range(0..4) {
                    0 => date.format("%Y-%m-%d").to_string(),
                    1 => date.format("%d/%m/%Y").to_string(),
                    2 => date.format("%m/%d/%Y").to_string(),
                    _ => other.date(date),
                });
            }
            g.unit = Unit::None;
            let theirs = g.render(other);
            let ours = g.render(lang);
            if theirs == ours {
                return None;
            }
            let noun = f
                .unit
                .noun(lang, false)
                .map(|u| {
                    if u.starts_with('/') {
                        u.to_owned()
                    } else {
                        format!("\u{a0}{u}")
                    }
                })
                .unwrap_or_default();
            Some(format!("{theirs}{noun}"))
        }
        // Shifted date.
        5 => {
            let FactValue::Date {
                date: PartialDate::Day { date },
            } = f.value
            else {
                return None;
            };
            let shifted = match rng.random_range(0..3) {
                0 => date + chrono::Duration::days(if rng.random_bool(0.5) { 1 } else { -1 }),
                1 => date.with_month(if date.month() == 12 {
                    11
                } else {
                    date.month() + 1
                })?,
                _ => date.with_year(date.year() + if rng.random_bool(0.5) { 1 } else { -1 })?,
            };
            Some(lang.date(shifted))
        }
        // Percentages: sign flipped or dropped, scaled, or in words.
        6 => {
            let FactValue::Percent { value } = f.value else {
                return None;
            };
            Some(match rng.random_range(0..3) {
                0 => lang.percent(-value, true),
                1 => lang.percent(value.abs(), false),
                _ => lang.percent(value * 10.0, true),
            })
        }
        _ => None,
    }
}

/// Figures a small model invents when it is given none (years, awards, durations, ranks).
fn invention(rng: &mut StdRng, lang: Language) -> String {
    let year = rng.random_range(1990..2027);
    let n = rng.random_range(2..40);
    let pool: Vec<String> = match lang {
        Language::En => vec![
            format!(" Formed in {year}, the band has won {n} awards."),
            format!(" They have released {n} albums since {year}."),
            " Nominated for two Grammys.".into(),
            " Touring for over a decade.".into(),
            format!(" Their {n}th single topped the charts."),
            " Their first album sold a million copies.".into(),
            " The record doubled their audience.".into(),
            format!(" Number {n} on the Billboard chart."),
            format!(" Played to {n},000 fans in May."),
        ],
        Language::Fr => vec![
            format!(" Formé en {year}, le groupe a remporté {n} prix."),
            " Deux fois nommé aux Victoires de la musique.".into(),
            " En tournée depuis une décennie.".into(),
            format!(" Leur {n}e single a été classé numéro un."),
            " Leur premier album s'est vendu à un million d'exemplaires.".into(),
            " Sorti en juin, le disque a doublé leur public.".into(),
            format!(" Plus de {n} 000 spectateurs."),
            " Quatre-vingt-dix concerts cette année.".into(),
        ],
        Language::De => vec![
            format!(" Seit {year} auf Tour, {n} Preise gewonnen."),
            " Zweimal für den Echo nominiert.".into(),
            " Seit einem Jahrzehnt auf der Bühne.".into(),
            format!(" Platz {n} der Charts."),
            " Das erste Album verkaufte sich eine Million Mal.".into(),
            " Im März erschien das zweiundzwanzigste Video.".into(),
            " Die Single hat ihr Publikum verdoppelt.".into(),
            format!(" Vor {n}.000 Fans gespielt."),
        ],
    };
    pool[rng.random_range(0..pool.len())].clone()
}

#[test]
fn adversarial_drafts_are_all_rejected_and_clean_ones_accepted() {
    let mut rng = StdRng::seed_from_u64(13);
    let (mut adversarial, mut accepted_adversarial) = (0usize, Vec::new());
    let (mut clean, mut false_rejections) = (0usize, Vec::new());
    let mut by_kind = [0usize; 8];
    let kinds = [Kind::BioLong, Kind::ReleaseAnnouncement, Kind::SocialPost];
    while adversarial < 3000 {
        let sheet = random_sheet(&mut rng);
        for lang in LANGUAGES {
            let ids: Vec<String> = sheet.facts.iter().map(|f| f.id.clone()).collect();
            let kind = kinds[rng.random_range(0..kinds.len())];
            let answer = format!("{}{}", writer::write(kind, lang, &ids, 300), extra(lang));
            let allowed = allowed_forms(&sheet, lang);
            let rendered = render(&answer, &allowed, lang).expect("renders");
            clean += 1;
            if !rendered.violations.is_empty() {
                false_rejections.push((rendered.text.clone(), rendered.violations.clone()));
            }
            let text = rendered.text;
            for _ in 0..6 {
                let kind = rng.random_range(0..8);
                let candidate = if kind == 7 {
                    Some(format!("{text}{}", invention(&mut rng, lang)))
                } else {
                    let f = &sheet.facts[rng.random_range(0..sheet.facts.len())];
                    let form = f.render(lang);
                    if !text.contains(&form) {
                        continue;
                    }
                    mutate(&mut rng, f, &form, lang, kind)
                        .filter(|m| *m != form && !allowed.iter().any(|a| a.form == *m))
                        .map(|m| text.replacen(&form, &m, 1))
                };
                let Some(draft) = candidate else { continue };
                adversarial += 1;
                by_kind[kind] += 1;
                if verify(&draft, &allowed).passed() {
                    accepted_adversarial.push(draft);
                }
            }
        }
    }
    eprintln!(
        "grounding: {adversarial} adversarial drafts (per kind: digit {}, value {}, unit {}, \
         spelled {}, locale {}, date {}, percent {}, invented {}), {} accepted; {clean} clean \
         drafts, {} falsely rejected",
        by_kind[0],
        by_kind[1],
        by_kind[2],
        by_kind[3],
        by_kind[4],
        by_kind[5],
        by_kind[6],
        by_kind[7],
        accepted_adversarial.len(),
        false_rejections.len()
    );
    assert!(adversarial >= 1000);
    assert!(by_kind.iter().all(|n| *n > 20), "{by_kind:?}");
    assert!(
        accepted_adversarial.is_empty(),
        "ungrounded drafts accepted: {:#?}",
        &accepted_adversarial[..accepted_adversarial.len().min(10)]
    );
    assert!(
        false_rejections.is_empty(),
        "{:#?}",
        &false_rejections[..false_rejections.len().min(5)]
    );
}

/// Prose without figures, as a model writes it: what the word lists must not reject, and the
/// known strict cases they do (counted, not hidden).
#[test]
fn false_rejections_of_figure_free_prose_are_counted() {
    let prose = [
        "Their sound blends warm synths with live drums.",
        "A voice that carries across the city at night.",
        "The band returns with a bold new record.",
        "Fans can stream it everywhere today.",
        "Sa voix porte une mélancolie lumineuse.",
        "Le groupe revient avec un disque audacieux.",
        "Une musique pensée pour les longues nuits d'été.",
        "Ihre Musik verbindet warme Synthesizer mit echtem Schlagzeug.",
        "Eine Stimme, die durch die Nacht trägt.",
        "Die Band kehrt mit einem mutigen neuen Album zurück.",
        "Selbst in der Stille hört man die Stadt.",
        // Known strict: ordinals and `one` always count as figures.
        "For the first time, the band plays acoustic.",
        "One of the most exciting voices around.",
        "Zum ersten Mal spielt die Band akustisch.",
        "Pour la première fois, le groupe joue en acoustique.",
        "They deserve a second listen.",
    ];
    let rejected: Vec<&str> = prose
        .iter()
        .copied()
        .filter(|p| !verify(p, &[]).passed())
        .collect();
    eprintln!(
        "figure-free prose: {} of {} rejected: {rejected:?}",
        rejected.len(),
        prose.len()
    );
    assert_eq!(rejected.len(), 5, "{rejected:?}");
}
