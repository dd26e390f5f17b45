//! The identity graph: which account on each platform is the artist's, how we know, and how
//! sure we are.
//!
//! Candidates come from MusicBrainz (URL relationships), Wikidata (external-id statements) and
//! people (`tasks social link`). Resolution, per platform:
//! - a manual link wins, whatever was found (a differing find is noted, not merged);
//! - one account found by every source that found any: linked, with the provenance of each
//!   source and a confidence that grows with the sources agreeing;
//! - two or more accounts: quarantined with every candidate and reported; nothing is pulled
//!   for it until a person links one by hand.
//!
//! The hubs are checked too: two MusicBrainz artists, or a MusicBrainz id the Wikidata item
//! does not list, quarantine the MusicBrainz link, and the accounts found only through that
//! artist are quarantined with it (the same for two Wikidata items).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::platform::Platform;

/// Where a link or candidate comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// MusicBrainz relationships.
    MusicBrainz,
    /// Wikidata statements.
    Wikidata,
    /// Entered by a person.
    Manual,
}

/// How one source supports one account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// The source.
    pub source: Source,
    /// When it was read.
    pub fetched_at: DateTime<Utc>,
    /// The relationship: a MusicBrainz relationship type id, a Wikidata property, `manual`.
    pub relationship: String,
    /// The record it was read from (an MBID, a QID, who entered it).
    pub via: String,
}

/// One account proposed by one source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The platform.
    pub platform: Platform,
    /// The account, normalised.
    pub account: String,
    /// Who proposes it and how.
    pub provenance: Provenance,
}

/// How a link was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkStatus {
    /// Found by the open-data sources, which agree.
    Found,
    /// Entered by a person; wins over anything found.
    Manual,
}

/// A link from the artist to one account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    /// The platform.
    pub platform: Platform,
    /// The account as linked (a channel id, a handle, a username, an id).
    pub account: String,
    /// The platform's stable id of the account, once resolved (a YouTube handle's channel
    /// id, an Instagram username's user id).
    #[serde(default)]
    pub stable_id: Option<String>,
    /// How it was decided.
    pub status: LinkStatus,
    /// 0 to 1: 1 for manual links; 0.95 when MusicBrainz and Wikidata agree; 0.8 from
    /// MusicBrainz alone; 0.7 from Wikidata alone.
    pub confidence: f64,
    /// Every source supporting it.
    pub provenance: Vec<Provenance>,
}

impl Link {
    /// The id to ask the platform with: the stable id when known.
    pub fn key(&self) -> &str {
        self.stable_id.as_deref().unwrap_or(&self.account)
    }
}

/// A platform whose candidates disagree: nothing is linked for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quarantine {
    /// The platform.
    pub platform: Platform,
    /// Why, for a person.
    pub reason: String,
    /// Every candidate.
    pub candidates: Vec<Candidate>,
}

/// A manual link, as `tasks social link` stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManualLink {
    /// The platform.
    pub platform: Platform,
    /// The account, normalised.
    pub account: String,
    /// When it was entered.
    pub entered_at: DateTime<Utc>,
    /// Who or what entered it (free text, for the audit trail).
    pub by: String,
}

/// The resolved graph of one artist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Graph {
    /// The links, one per platform at most.
    pub links: Vec<Link>,
    /// The platforms quarantined.
    pub quarantined: Vec<Quarantine>,
    /// Facts a person may want to know (a redirect followed, a find that differs from a manual
    /// link, a statement skipped).
    pub notes: Vec<String>,
    /// When the open-data sources were last read.
    pub resolved_at: Option<DateTime<Utc>>,
}

impl Graph {
    /// The link to `platform`, if any.
    pub fn link(&self, platform: Platform) -> Option<&Link> {
        self.links.iter().find(|l| l.platform == platform)
    }

    /// The link to `platform`, mutable.
    pub fn link_mut(&mut self, platform: Platform) -> Option<&mut Link> {
        self.links.iter_mut().find(|l| l.platform == platform)
    }
}

fn confidence(sources: &[Source]) -> f64 {
    let mb = sources.contains(&Source::MusicBrainz);
    let wd = sources.contains(&Source::Wikidata);
    match (mb, wd) {
        (true, true) => 0.95,
        (true, false) => 0.8,
        (false, true) => 0.7,
        (false, false) => 0.0,
    }
}

fn describe(candidates: &[Candidate]) -> String {
    candidates
        .iter()
        .map(|c| {
            format!(
                "{} ({} {})",
                c.account,
                source_name(c.provenance.source),
                c.provenance.relationship
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn source_name(source: Source) -> &'static str {
    match source {
        Source::MusicBrainz => "musicbrainz",
        Source::Wikidata => "wikidata",
        Source::Manual => "manual",
    }
}

/// Resolves the graph from the manual links, the found candidates, and the MBIDs the
/// Wikidata item lists (`None` when no item was found: nothing to check against).
pub fn resolve(
    manual: &[ManualLink],
    candidates: Vec<Candidate>,
    wikidata_mbids: Option<&[String]>,
    resolved_at: DateTime<Utc>,
) -> Graph {
    let mut graph = Graph {
        resolved_at: Some(resolved_at),
        ..Graph::default()
    };
    let mut by_platform: BTreeMap<Platform, Vec<Candidate>> = BTreeMap::new();
    for c in candidates {
        by_platform.entry(c.platform).or_default().push(c);
    }
    // The hubs first: a quarantined hub taints what was found only through it.
    let mut tainted: Vec<(Source, String)> = Vec::new();
    let mb = by_platform
        .remove(&Platform::MusicBrainz)
        .unwrap_or_default();
    let mb_from_mb: Vec<&Candidate> = mb
        .iter()
        .filter(|c| c.provenance.source == Source::MusicBrainz)
        .collect();
    if let (Some(known), Some(found)) = (wikidata_mbids, mb_from_mb.first())
        && !known.is_empty()
        && !known.contains(&found.account)
    {
        tainted.push((
            Source::MusicBrainz,
            format!(
                "MusicBrainz artist {} is not among the MBIDs of the Wikidata item ({})",
                found.account,
                known.join(", ")
            ),
        ));
    }
    let wd = by_platform.remove(&Platform::Wikidata).unwrap_or_default();
    for (platform, list) in [(Platform::MusicBrainz, mb), (Platform::Wikidata, wd)] {
        let hub_taint = tainted
            .iter()
            .find(|(s, _)| platform == Platform::MusicBrainz && *s == Source::MusicBrainz);
        if let Some((_, reason)) = hub_taint
            && !manual.iter().any(|m| m.platform == platform)
        {
            graph.quarantined.push(Quarantine {
                platform,
                reason: reason.clone(),
                candidates: list,
            });
            continue;
        }
        let distinct = distinct(&list);
        if distinct > 1 && !manual.iter().any(|m| m.platform == platform) {
            let source = if platform == Platform::MusicBrainz {
                Source::MusicBrainz
            } else {
                Source::Wikidata
            };
            let reason = format!(
                "{distinct} different {platform} records: {}",
                describe(&list)
            );
            tainted.push((source, reason.clone()));
            graph.quarantined.push(Quarantine {
                platform,
                reason,
                candidates: list,
            });
            continue;
        }
        decide(&mut graph, platform, manual, list, &[]);
    }
    for platform in Platform::ALL {
        if matches!(platform, Platform::MusicBrainz | Platform::Wikidata) {
            continue;
        }
        let list = by_platform.remove(&platform).unwrap_or_default();
        decide(&mut graph, platform, manual, list, &tainted);
    }
    graph
}

fn distinct(list: &[Candidate]) -> usize {
    let mut accounts: Vec<&str> = list.iter().map(|c| c.account.as_str()).collect();
    accounts.sort_unstable();
    accounts.dedup();
    accounts.len()
}

fn decide(
    graph: &mut Graph,
    platform: Platform,
    manual: &[ManualLink],
    list: Vec<Candidate>,
    tainted: &[(Source, String)],
) {
    if let Some(m) = manual.iter().find(|m| m.platform == platform) {
        let mut provenance = vec![Provenance {
            source: Source::Manual,
            fetched_at: m.entered_at,
            relationship: "manual".into(),
            via: m.by.clone(),
        }];
        for c in &list {
            if c.account == m.account {
                provenance.push(c.provenance.clone());
            } else {
                graph.notes.push(format!(
                    "{platform}: {} found {} but the manual link {} wins",
                    source_name(c.provenance.source),
                    c.account,
                    m.account
                ));
            }
        }
        graph.links.push(Link {
            platform,
            account: m.account.clone(),
            stable_id: None,
            status: LinkStatus::Manual,
            confidence: 1.0,
            provenance,
        });
        return;
    }
    if list.is_empty() {
        return;
    }
    if distinct(&list) > 1 {
        graph.quarantined.push(Quarantine {
            platform,
            reason: format!("the sources disagree: {}", describe(&list)),
            candidates: list,
        });
        return;
    }
    let sources: Vec<Source> = list.iter().map(|c| c.provenance.source).collect();
    let only_tainted = tainted.iter().find(|(s, _)| sources.iter().all(|x| x == s));
    if let Some((source, why)) = only_tainted {
        graph.quarantined.push(Quarantine {
            platform,
            reason: format!(
                "found only through {}, which is quarantined: {why}",
                source_name(*source)
            ),
            candidates: list,
        });
        return;
    }
    let account = list[0].account.clone();
    graph.links.push(Link {
        platform,
        account,
        stable_id: None,
        status: LinkStatus::Found,
        confidence: confidence(&sources),
        provenance: list.into_iter().map(|c| c.provenance).collect(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000, 0).unwrap()
    }

    fn c(platform: Platform, account: &str, source: Source) -> Candidate {
        Candidate {
            platform,
            account: account.into(),
            provenance: Provenance {
                source,
                fetched_at: at(),
                relationship: match source {
                    Source::MusicBrainz => "6a540e5b-58c6-4192-b6ba-dbc71ec8fcf0".into(),
                    _ => "P2397".into(),
                },
                via: "x".into(),
            },
        }
    }

    const MB1: &str = "b10bbbfc-cf9e-42e0-be17-e2c3e1d2600d";
    const MB2: &str = "b06f5860-ce8f-4d8f-92ee-6c6f165ef8ef";
    const YT1: &str = "UCaaaaaaaaaaaaaaaaaaaaaa";
    const YT2: &str = "UCbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn agreeing_sources_link_with_both_provenances() {
        let g = resolve(
            &[],
            vec![
                c(Platform::MusicBrainz, MB1, Source::MusicBrainz),
                c(Platform::MusicBrainz, MB1, Source::Wikidata),
                c(Platform::YouTube, YT1, Source::MusicBrainz),
                c(Platform::YouTube, YT1, Source::Wikidata),
                c(Platform::Deezer, "27", Source::Wikidata),
            ],
            Some(&[MB1.to_owned()]),
            at(),
        );
        assert!(g.quarantined.is_empty(), "{:?}", g.quarantined);
        let yt = g.link(Platform::YouTube).unwrap();
        assert_eq!(
            (yt.account.as_str(), yt.confidence, yt.provenance.len()),
            (YT1, 0.95, 2)
        );
        assert_eq!(g.link(Platform::Deezer).unwrap().confidence, 0.7);
    }

    #[test]
    fn two_channels_are_quarantined_not_merged() {
        let g = resolve(
            &[],
            vec![
                c(Platform::YouTube, YT1, Source::MusicBrainz),
                c(Platform::YouTube, YT2, Source::Wikidata),
            ],
            None,
            at(),
        );
        assert!(g.link(Platform::YouTube).is_none());
        assert_eq!(g.quarantined.len(), 1);
        assert_eq!(g.quarantined[0].candidates.len(), 2);
        assert!(g.quarantined[0].reason.contains(YT1) && g.quarantined[0].reason.contains(YT2));
    }

    #[test]
    fn an_mbid_wikidata_does_not_know_quarantines_what_came_only_through_it() {
        let g = resolve(
            &[],
            vec![
                c(Platform::MusicBrainz, MB2, Source::MusicBrainz),
                c(Platform::MusicBrainz, MB1, Source::Wikidata),
                c(Platform::YouTube, YT1, Source::MusicBrainz),
                c(Platform::Deezer, "27", Source::MusicBrainz),
                c(Platform::Deezer, "27", Source::Wikidata),
            ],
            Some(&[MB1.to_owned()]),
            at(),
        );
        let q: Vec<Platform> = g.quarantined.iter().map(|q| q.platform).collect();
        assert_eq!(q, vec![Platform::MusicBrainz, Platform::YouTube]);
        assert!(g.quarantined[0].reason.contains("not among the MBIDs"));
        // Supported by Wikidata too: kept.
        assert_eq!(g.link(Platform::Deezer).unwrap().confidence, 0.95);
    }

    #[test]
    fn manual_links_win_and_differences_are_noted() {
        let manual = [ManualLink {
            platform: Platform::YouTube,
            account: YT2.into(),
            entered_at: at(),
            by: "cli".into(),
        }];
        let g = resolve(
            &manual,
            vec![
                c(Platform::YouTube, YT1, Source::MusicBrainz),
                c(Platform::YouTube, YT2, Source::Wikidata),
            ],
            None,
            at(),
        );
        assert!(g.quarantined.is_empty());
        let yt = g.link(Platform::YouTube).unwrap();
        assert_eq!(
            (yt.account.as_str(), yt.status, yt.confidence),
            (YT2, LinkStatus::Manual, 1.0)
        );
        assert_eq!(
            yt.provenance.len(),
            2,
            "the agreeing find is kept as provenance"
        );
        assert_eq!(g.notes.len(), 1);
        assert!(g.notes[0].contains("manual link"));
    }

    #[test]
    fn no_links_anywhere_is_an_empty_graph() {
        let g = resolve(&[], vec![], None, at());
        assert!(g.links.is_empty() && g.quarantined.is_empty());
        assert_eq!(g.resolved_at, Some(at()));
    }
}
