//! The schedules of `template.yaml`, read from the template and fired on a local clock by
//! `tasks serve`.
//!
//! Every `AWS::Scheduler::Schedule` resource gives its expression (`cron(...)`, `rate(...)` or
//! `at(...)`, EventBridge Scheduler syntax), its target function (the `Binary` of the target's
//! build properties) and its input, with `!Sub` parameters filled in. Nothing is re-typed here:
//! a schedule added to the template fires locally too. Cron fields follow EventBridge: six
//! fields (minutes, hours, day-of-month, month, day-of-week, year), exactly one of day-of-month
//! and day-of-week is `?`, days of the week run 1-7 from SUN, and `L`, `W` (day-of-month) and
//! `L`, `#` (day-of-week) are supported. Time zones other than UTC are refused (no zone
//! database in the tree) with an error naming the schedule.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Timelike, Utc};
use serde_yaml_ng::Value as Yaml;

/// Why an expression or a schedule of the template could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// The template is not YAML.
    #[error("template: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    /// A cron field is malformed or uses a feature EventBridge (or this parser) lacks.
    #[error("cron {field} field {value:?}: {reason}")]
    Cron {
        /// The field's name (`minutes`, `day-of-week`, ...).
        field: &'static str,
        /// The field's text.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// A whole expression is malformed.
    #[error("schedule expression {expression:?}: {reason}")]
    Expression {
        /// The expression.
        expression: String,
        /// What is wrong.
        reason: String,
    },
    /// A schedule resource of the template cannot be run locally.
    #[error("template resource {resource}: {reason}")]
    Resource {
        /// The logical id.
        resource: String,
        /// What is wrong.
        reason: String,
    },
}

fn cron_err(field: &'static str, value: &str, reason: impl Into<String>) -> ScheduleError {
    ScheduleError::Cron {
        field,
        value: value.to_owned(),
        reason: reason.into(),
    }
}

/// A set of allowed values of one cron field (bit `i` set: value `i` allowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bits(u128);

impl Bits {
    fn has(self, v: u32) -> bool {
        v < 128 && self.0 & (1u128 << v) != 0
    }
}

/// The day-of-month field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MonthDays {
    /// `?`: the day-of-week field decides.
    Unspecified,
    /// Explicit days (`*`, lists, ranges, steps).
    Days(Bits),
    /// `L`: the last day of the month.
    Last,
    /// `LW`: the last weekday (Monday to Friday) of the month.
    LastWeekday,
    /// `nW`: the weekday nearest day `n`, within the month.
    NearestWeekday(u32),
}

/// The day-of-week field (1 = SUN ... 7 = SAT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WeekDays {
    /// `?`: the day-of-month field decides.
    Unspecified,
    /// Explicit days.
    Days(Bits),
    /// `dL`: the last day `d` of the month (`L` alone: the last Saturday).
    Last(u32),
    /// `d#n`: the `n`th day `d` of the month.
    Nth(u32, u32),
}

/// A parsed EventBridge cron expression (the six fields inside `cron(...)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: Bits,
    hours: Bits,
    month_days: MonthDays,
    months: Bits,
    week_days: WeekDays,
    /// Years as offsets from 1970 (1970-2199 fit in 230 values: two words).
    years: (Bits, Bits),
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const FIRST_YEAR: u32 = 1970;
const LAST_YEAR: u32 = 2199;

/// Parses one value of a field: a number, or a name from `names` (1-based).
fn value(
    field: &'static str,
    text: &str,
    min: u32,
    max: u32,
    names: &[&str],
) -> Result<u32, ScheduleError> {
    let upper = text.to_ascii_uppercase();
    let v = match names.iter().position(|n| *n == upper) {
        Some(i) => i as u32 + 1,
        None => text
            .parse::<u32>()
            .map_err(|_| cron_err(field, text, format!("not a number from {min} to {max}")))?,
    };
    if !(min..=max).contains(&v) {
        return Err(cron_err(field, text, format!("out of range {min}-{max}")));
    }
    Ok(v)
}

/// Parses `*`, lists, ranges (wrapping past the maximum, as `FRI-MON`) and steps into the set
/// of allowed values, as offsets from `base`.
fn list(
    field: &'static str,
    text: &str,
    min: u32,
    max: u32,
    names: &[&str],
) -> Result<Vec<u32>, ScheduleError> {
    let mut out = Vec::new();
    for part in text.split(',') {
        if part.is_empty() {
            return Err(cron_err(field, text, "empty list item"));
        }
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                    cron_err(
                        field,
                        text,
                        format!("step {step:?} is not a positive number"),
                    )
                })?;
                (range, step)
            }
            None => (part, 1),
        };
        let (start, end) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (
                value(field, a, min, max, names)?,
                value(field, b, min, max, names)?,
            )
        } else {
            let v = value(field, range, min, max, names)?;
            // `5/15` runs from 5 to the maximum in steps of 15; `5` alone is just 5.
            (v, if part.contains('/') { max } else { v })
        };
        let span = if start <= end {
            end - start
        } else {
            max - start + 1 + end - min
        };
        let mut offset = 0;
        while offset <= span {
            let v = start + offset;
            out.push(if v > max { v - (max - min + 1) } else { v });
            offset += step;
        }
    }
    Ok(out)
}

fn bits(values: &[u32]) -> Bits {
    Bits(values.iter().fold(0u128, |acc, v| acc | (1u128 << v)))
}

impl FromStr for Cron {
    type Err = ScheduleError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [minutes, hours, dom, month, dow, year] = fields[..] else {
            return Err(ScheduleError::Expression {
                expression: format!("cron({text})"),
                reason: format!(
                    "{} fields; EventBridge cron has six: minutes hours day-of-month month day-of-week year",
                    fields.len()
                ),
            });
        };
        let simple = |field: &'static str, text: &str, min: u32, max: u32, names: &[&str]| {
            if text.contains(['?', 'L', 'W', '#']) && names.is_empty() {
                return Err(cron_err(
                    field,
                    text,
                    "only `, - * /` are allowed in this field",
                ));
            }
            list(field, text, min, max, names).map(|v| bits(&v))
        };
        let minutes = simple("minutes", minutes, 0, 59, &[])?;
        let hours = simple("hours", hours, 0, 23, &[])?;
        let months = simple("month", month, 1, 12, &MONTHS)?;
        let years = {
            if year.contains(['?', 'L', 'W', '#']) {
                return Err(cron_err(
                    "year",
                    year,
                    "only `, - * /` are allowed in this field",
                ));
            }
            let values = list("year", year, FIRST_YEAR, LAST_YEAR, &[])?;
            let offsets: Vec<u32> = values.iter().map(|y| y - FIRST_YEAR).collect();
            (
                bits(
                    &offsets
                        .iter()
                        .copied()
                        .filter(|o| *o < 128)
                        .collect::<Vec<_>>(),
                ),
                bits(
                    &offsets
                        .iter()
                        .filter(|o| **o >= 128)
                        .map(|o| o - 128)
                        .collect::<Vec<_>>(),
                ),
            )
        };
        let month_days = match dom {
            "?" => MonthDays::Unspecified,
            "L" => MonthDays::Last,
            "LW" => MonthDays::LastWeekday,
            w if w.ends_with('W') => {
                let day = value("day-of-month", &w[..w.len() - 1], 1, 31, &[])?;
                MonthDays::NearestWeekday(day)
            }
            other if other.contains(['L', 'W', '#', '?']) => {
                return Err(cron_err(
                    "day-of-month",
                    other,
                    "supported: numbers, `, - * / ?`, `L`, `LW` and `nW`",
                ));
            }
            other => MonthDays::Days(bits(&list("day-of-month", other, 1, 31, &[])?)),
        };
        let week_days = match dow {
            "?" => WeekDays::Unspecified,
            "L" => WeekDays::Last(7),
            l if l.ends_with('L') => {
                WeekDays::Last(value("day-of-week", &l[..l.len() - 1], 1, 7, &WEEKDAYS)?)
            }
            nth if nth.contains('#') => {
                let (day, n) = nth.split_once('#').unwrap_or((nth, ""));
                let day = value("day-of-week", day, 1, 7, &WEEKDAYS)?;
                let n: u32 = n
                    .parse()
                    .ok()
                    .filter(|n| (1..=5).contains(n))
                    .ok_or_else(|| {
                        cron_err("day-of-week", nth, "`#` takes an occurrence from 1 to 5")
                    })?;
                WeekDays::Nth(day, n)
            }
            other => WeekDays::Days(bits(&list("day-of-week", other, 1, 7, &WEEKDAYS)?)),
        };
        match (month_days, week_days) {
            (MonthDays::Unspecified, WeekDays::Unspecified) => Err(cron_err(
                "day-of-week",
                dow,
                "day-of-month and day-of-week are both `?`: one of them must name the days",
            )),
            (MonthDays::Unspecified, _) | (_, WeekDays::Unspecified) => Ok(Cron {
                minutes,
                hours,
                month_days,
                months,
                week_days,
                years,
            }),
            _ => Err(cron_err(
                "day-of-week",
                dow,
                "day-of-month and day-of-week cannot both be given: one of them must be `?`",
            )),
        }
    }
}

fn last_day(year: i32, month: u32) -> u32 {
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    };
    next.and_then(|d| d.pred_opt()).map_or(28, |d| d.day())
}

/// 1 = SUN ... 7 = SAT.
fn weekday(date: NaiveDate) -> u32 {
    date.weekday().num_days_from_sunday() + 1
}

impl Cron {
    fn year_allowed(&self, year: i32) -> bool {
        let Ok(year) = u32::try_from(year) else {
            return false;
        };
        if !(FIRST_YEAR..=LAST_YEAR).contains(&year) {
            return false;
        }
        let offset = year - FIRST_YEAR;
        if offset < 128 {
            self.years.0.has(offset)
        } else {
            self.years.1.has(offset - 128)
        }
    }

    fn day_allowed(&self, date: NaiveDate) -> bool {
        if !self.year_allowed(date.year()) || !self.months.has(date.month()) {
            return false;
        }
        let (day, last) = (date.day(), last_day(date.year(), date.month()));
        let on_weekday = |d: u32| date.with_day(d).map(weekday);
        let month_ok = match self.month_days {
            MonthDays::Unspecified => true,
            MonthDays::Days(days) => days.has(day),
            MonthDays::Last => day == last,
            MonthDays::LastWeekday => {
                let target = match on_weekday(last) {
                    Some(7) => last - 1,
                    Some(1) => last - 2,
                    _ => last,
                };
                day == target
            }
            MonthDays::NearestWeekday(n) => {
                let n = n.min(last);
                let target = match on_weekday(n) {
                    Some(7) if n == 1 => 3,
                    Some(7) => n - 1,
                    Some(1) if n == last => n - 2,
                    Some(1) => n + 1,
                    _ => n,
                };
                day == target
            }
        };
        let week_ok = match self.week_days {
            WeekDays::Unspecified => true,
            WeekDays::Days(days) => days.has(weekday(date)),
            WeekDays::Last(d) => weekday(date) == d && day + 7 > last,
            WeekDays::Nth(d, n) => weekday(date) == d && (day - 1) / 7 + 1 == n,
        };
        month_ok && week_ok
    }

    /// The first time strictly after `after` that the expression matches (minute precision),
    /// or `None` if there is none before the end of 2199.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let start = after.naive_utc();
        let mut date = start.date();
        let mut first_day = true;
        loop {
            if date.year() > LAST_YEAR as i32 {
                return None;
            }
            if self.day_allowed(date) {
                for hour in 0..24 {
                    if !self.hours.has(hour) || (first_day && hour < start.hour()) {
                        continue;
                    }
                    for minute in 0..60 {
                        if !self.minutes.has(minute) {
                            continue;
                        }
                        let at = date.and_hms_opt(hour, minute, 0)?;
                        if at > start {
                            return Some(at.and_utc());
                        }
                    }
                }
            }
            date = date.succ_opt()?;
            first_day = false;
        }
    }
}

/// A schedule expression of EventBridge Scheduler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expression {
    /// `cron(minutes hours day-of-month month day-of-week year)`.
    Cron(Cron),
    /// `rate(value unit)`: every `value` minutes, hours or days from when the schedule starts.
    Rate(Duration),
    /// `at(yyyy-mm-ddThh:mm:ss)`: once.
    At(NaiveDateTime),
}

impl FromStr for Expression {
    type Err = ScheduleError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let err = |reason: &str| ScheduleError::Expression {
            expression: text.to_owned(),
            reason: reason.to_owned(),
        };
        let inner = |prefix: &str| {
            text.strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix(')'))
        };
        if let Some(fields) = inner("cron(") {
            return Ok(Expression::Cron(fields.parse()?));
        }
        if let Some(rate) = inner("rate(") {
            let (n, unit) = rate
                .trim()
                .split_once(' ')
                .ok_or_else(|| err("rate takes `value unit`, e.g. rate(5 minutes)"))?;
            let n: i64 = n
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| err("the rate's value must be a positive whole number"))?;
            let (singular, minutes) = match unit.trim() {
                "minute" => (true, 1),
                "minutes" => (false, 1),
                "hour" => (true, 60),
                "hours" => (false, 60),
                "day" => (true, 24 * 60),
                "days" => (false, 24 * 60),
                _ => return Err(err("the rate's unit must be minute(s), hour(s) or day(s)")),
            };
            if singular != (n == 1) {
                return Err(err(
                    "EventBridge wants a singular unit for 1 and a plural one otherwise",
                ));
            }
            return Ok(Expression::Rate(Duration::minutes(n * minutes)));
        }
        if let Some(at) = inner("at(") {
            let at = NaiveDateTime::parse_from_str(at.trim(), "%Y-%m-%dT%H:%M:%S")
                .map_err(|_| err("at() takes yyyy-mm-ddThh:mm:ss"))?;
            return Ok(Expression::At(at));
        }
        Err(err("not cron(...), rate(...) or at(...)"))
    }
}

impl Expression {
    /// The first firing strictly after `after`, for a schedule that started at `started`
    /// (rates count from there).
    pub fn next_after(
        &self,
        after: DateTime<Utc>,
        started: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        match self {
            Expression::Cron(cron) => cron.next_after(after),
            Expression::Rate(period) => {
                let period_ms = period.num_milliseconds().max(1);
                let elapsed = (after - started).num_milliseconds().max(0);
                let periods = elapsed / period_ms + 1;
                Some(started + Duration::milliseconds(periods * period_ms))
            }
            Expression::At(at) => Some(at.and_utc()).filter(|at| *at > after),
        }
    }
}

/// One schedule of the template.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The resource's logical id (`ArtistMonitoringSchedule`).
    pub resource: String,
    /// The function it invokes (`artist-monitoring`).
    pub function: String,
    /// The expression as the template writes it.
    pub source: String,
    /// The parsed expression.
    pub expression: Expression,
    /// The input, with the template's parameters substituted and the Scheduler's context
    /// placeholders (`<aws.scheduler.scheduled-time>`, ...) left for [`Schedule::input_at`].
    pub input: String,
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({} -> {})",
            self.resource, self.source, self.function
        )
    }
}

impl Schedule {
    /// The input EventBridge Scheduler would send for the firing at `at`.
    pub fn input_at(&self, at: DateTime<Utc>) -> String {
        self.input
            .replace(
                "<aws.scheduler.scheduled-time>",
                &at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            )
            .replace(
                "<aws.scheduler.schedule-arn>",
                &format!(
                    "arn:aws:scheduler:local:000000000000:schedule/default/{}",
                    self.resource
                ),
            )
            .replace(
                "<aws.scheduler.execution-id>",
                &uuid::Uuid::new_v4().to_string(),
            )
            .replace("<aws.scheduler.attempt-number>", "1")
    }
}

/// The template's short-form tag (`!GetAtt`, `!Sub`) and value, or the long form's.
fn intrinsic<'a>(value: &'a Yaml, name: &str) -> Option<&'a Yaml> {
    match value {
        Yaml::Tagged(tagged) if tagged.tag.to_string().trim_start_matches('!') == name => {
            Some(&tagged.value)
        }
        Yaml::Mapping(map) if map.len() == 1 => map.get(format!("Fn::{name}")),
        _ => None,
    }
}

fn substitute(
    resource: &str,
    text: &str,
    parameters: &BTreeMap<String, String>,
) -> Result<String, ScheduleError> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| ScheduleError::Resource {
            resource: resource.to_owned(),
            reason: format!("unclosed `${{` in !Sub {text:?}"),
        })?;
        let name = &after[..end];
        if let Some(literal) = name.strip_prefix('!') {
            out.push_str(&format!("${{{literal}}}"));
        } else {
            let value = parameters
                .get(name)
                .ok_or_else(|| ScheduleError::Resource {
                    resource: resource.to_owned(),
                    reason: format!("!Sub names {name:?}, which is not a parameter with a default"),
                })?;
            out.push_str(value);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Every enabled `AWS::Scheduler::Schedule` of `template`, in the template's order, with
/// `!Sub` parameters from `overrides`, else the parameters' defaults.
pub fn from_template(
    template: &str,
    overrides: &BTreeMap<String, String>,
) -> Result<Vec<Schedule>, ScheduleError> {
    let root: Yaml = serde_yaml_ng::from_str(template)?;
    let mut parameters: BTreeMap<String, String> = BTreeMap::new();
    if let Some(map) = root.get("Parameters").and_then(Yaml::as_mapping) {
        for (name, spec) in map {
            let (Some(name), Some(default)) = (name.as_str(), spec.get("Default")) else {
                continue;
            };
            let default = match default {
                Yaml::String(s) => s.clone(),
                Yaml::Number(n) => n.to_string(),
                Yaml::Bool(b) => b.to_string(),
                _ => continue,
            };
            parameters.insert(name.to_owned(), default);
        }
    }
    parameters.extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
    let resources = root
        .get("Resources")
        .and_then(Yaml::as_mapping)
        .ok_or_else(|| ScheduleError::Resource {
            resource: "Resources".into(),
            reason: "the template has no Resources mapping".into(),
        })?;
    let mut schedules = Vec::new();
    for (id, resource) in resources {
        let Some(id) = id.as_str() else { continue };
        if resource.get("Type").and_then(Yaml::as_str) != Some("AWS::Scheduler::Schedule") {
            continue;
        }
        let err = |reason: String| ScheduleError::Resource {
            resource: id.to_owned(),
            reason,
        };
        let properties = resource
            .get("Properties")
            .ok_or_else(|| err("no Properties".into()))?;
        if properties.get("State").and_then(Yaml::as_str) == Some("DISABLED") {
            continue;
        }
        let source = properties
            .get("ScheduleExpression")
            .and_then(Yaml::as_str)
            .ok_or_else(|| err("no ScheduleExpression string".into()))?;
        if let Some(zone) = properties
            .get("ScheduleExpressionTimezone")
            .and_then(Yaml::as_str)
            .filter(|z| !matches!(*z, "UTC" | "Etc/UTC"))
        {
            return Err(err(format!(
                "ScheduleExpressionTimezone {zone} is not supported locally (UTC only)"
            )));
        }
        let expression: Expression = source
            .parse()
            .map_err(|e: ScheduleError| err(e.to_string()))?;
        let target = properties
            .get("Target")
            .ok_or_else(|| err("no Target".into()))?;
        let arn = target
            .get("Arn")
            .ok_or_else(|| err("no Target.Arn".into()))?;
        let function_resource = match intrinsic(arn, "GetAtt") {
            Some(Yaml::String(s)) => s.split('.').next().map(str::to_owned),
            Some(Yaml::Sequence(items)) => items.first().and_then(Yaml::as_str).map(str::to_owned),
            _ => None,
        }
        .ok_or_else(|| err("Target.Arn is not !GetAtt <Function>.Arn".into()))?;
        let function = resources
            .get(function_resource.as_str())
            .and_then(|f| f.get("Metadata"))
            .and_then(|m| m.get("BuildProperties"))
            .and_then(|b| b.get("Binary"))
            .and_then(Yaml::as_str)
            .ok_or_else(|| {
                err(format!(
                    "target {function_resource} has no Metadata.BuildProperties.Binary naming the function"
                ))
            })?
            .to_owned();
        let input = match target.get("Input") {
            None => "{}".to_owned(),
            Some(Yaml::String(s)) => s.clone(),
            Some(other) => match intrinsic(other, "Sub") {
                Some(Yaml::String(s)) => substitute(id, s, &parameters)?,
                _ => {
                    return Err(err(
                        "Target.Input is neither a string nor !Sub of one".into()
                    ));
                }
            },
        };
        schedules.push(Schedule {
            resource: id.to_owned(),
            function,
            source: source.to_owned(),
            expression,
            input,
        });
    }
    Ok(schedules)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn next(expression: &str, after: &str) -> String {
        let e: Expression = expression.parse().unwrap();
        e.next_after(at(after), at(after))
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    }

    fn cron_error(fields: &str) -> String {
        format!("cron({fields})")
            .parse::<Expression>()
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn daily_cron_fires_at_its_time_today_or_tomorrow() {
        assert_eq!(
            next("cron(0 6 * * ? *)", "2026-11-25T05:59:59Z"),
            "2026-11-25T06:00:00Z"
        );
        assert_eq!(
            next("cron(0 6 * * ? *)", "2026-11-25T06:00:00Z"),
            "2026-11-26T06:00:00Z"
        );
        assert_eq!(
            next("cron(10 3 * * ? *)", "2026-12-31T23:59:00Z"),
            "2027-01-01T03:10:00Z"
        );
    }

    #[test]
    fn lists_ranges_steps_and_names() {
        assert_eq!(
            next("cron(0/15 * * * ? *)", "2026-11-25T10:07:00Z"),
            "2026-11-25T10:15:00Z"
        );
        assert_eq!(
            next("cron(5,35 8-9 * * ? *)", "2026-11-25T09:35:00Z"),
            "2026-11-26T08:05:00Z"
        );
        // 2026-11-25 is a Wednesday; MON-FRI at noon.
        assert_eq!(
            next("cron(0 12 ? * MON-FRI *)", "2026-11-27T12:00:00Z"),
            "2026-11-30T12:00:00Z"
        );
        // A range wrapping past SAT: FRI-MON.
        assert_eq!(
            next("cron(0 0 ? * FRI-MON *)", "2026-11-25T00:00:00Z"),
            "2026-11-27T00:00:00Z"
        );
        assert_eq!(
            next("cron(0 0 1 JAN,JUL ? *)", "2026-02-01T00:00:00Z"),
            "2026-07-01T00:00:00Z"
        );
        assert_eq!(
            next("cron(0 0 1 1 ? 2030)", "2026-02-01T00:00:00Z"),
            "2030-01-01T00:00:00Z"
        );
        assert_eq!(
            next("cron(*/20 */6 * * ? *)", "2026-11-25T06:40:00Z"),
            "2026-11-25T12:00:00Z"
        );
    }

    #[test]
    fn last_day_nearest_weekday_last_and_nth_weekday() {
        // L: the last day of February in a leap year and in a common year.
        assert_eq!(
            next("cron(0 0 L * ? *)", "2028-02-01T00:00:00Z"),
            "2028-02-29T00:00:00Z"
        );
        assert_eq!(
            next("cron(0 0 L 2 ? *)", "2027-01-01T00:00:00Z"),
            "2027-02-28T00:00:00Z"
        );
        // 15W: 2026-11-15 is a Sunday, so Monday the 16th; 1W on a Saturday (2026-08-01): the 3rd.
        assert_eq!(
            next("cron(0 9 15W * ? *)", "2026-11-01T00:00:00Z"),
            "2026-11-16T09:00:00Z"
        );
        assert_eq!(
            next("cron(0 9 1W 8 ? *)", "2026-07-01T00:00:00Z"),
            "2026-08-03T09:00:00Z"
        );
        // LW: 2026-05-31 is a Sunday, the last weekday is Friday the 29th.
        assert_eq!(
            next("cron(0 9 LW 5 ? *)", "2026-05-01T00:00:00Z"),
            "2026-05-29T09:00:00Z"
        );
        // 6L: the last Friday of November 2026 is the 27th; L alone: the last Saturday.
        assert_eq!(
            next("cron(0 9 ? * 6L *)", "2026-11-01T00:00:00Z"),
            "2026-11-27T09:00:00Z"
        );
        assert_eq!(
            next("cron(0 9 ? 11 L *)", "2026-11-01T00:00:00Z"),
            "2026-11-28T09:00:00Z"
        );
        // 3#2: the second Tuesday; MON#4 is the fourth Monday; 2#5 skips months without a fifth Monday (to March 2027).
        assert_eq!(
            next("cron(0 9 ? * 3#2 *)", "2026-11-01T00:00:00Z"),
            "2026-11-10T09:00:00Z"
        );
        assert_eq!(
            next("cron(0 9 ? * MON#4 *)", "2026-12-01T00:00:00Z"),
            "2026-12-28T09:00:00Z"
        );
        assert_eq!(
            next("cron(0 9 ? * 2#5 *)", "2026-12-29T00:00:00Z"),
            "2027-03-29T09:00:00Z"
        );
    }

    #[test]
    fn rate_and_at() {
        let started = at("2026-11-25T10:00:00Z");
        let every5: Expression = "rate(5 minutes)".parse().unwrap();
        assert_eq!(
            every5.next_after(started, started),
            Some(at("2026-11-25T10:05:00Z"))
        );
        assert_eq!(
            every5.next_after(at("2026-11-25T10:07:00Z"), started),
            Some(at("2026-11-25T10:10:00Z"))
        );
        let daily: Expression = "rate(1 day)".parse().unwrap();
        assert_eq!(
            daily.next_after(started, started),
            Some(at("2026-11-26T10:00:00Z"))
        );
        let once: Expression = "at(2026-11-25T12:30:00)".parse().unwrap();
        assert_eq!(
            once.next_after(started, started),
            Some(at("2026-11-25T12:30:00Z"))
        );
        assert_eq!(once.next_after(at("2026-11-25T12:30:00Z"), started), None);
        assert!("rate(1 minutes)".parse::<Expression>().is_err());
        assert!("rate(5 minute)".parse::<Expression>().is_err());
        assert!("rate(0 hours)".parse::<Expression>().is_err());
        assert!("rate(5 weeks)".parse::<Expression>().is_err());
    }

    #[test]
    fn errors_name_the_field() {
        assert!(
            cron_error("0 6 * * *").contains("six"),
            "{}",
            cron_error("0 6 * * *")
        );
        assert!(cron_error("60 6 * * ? *").contains("minutes field"));
        assert!(cron_error("0 24 * * ? *").contains("hours field"));
        assert!(cron_error("0 6 * * * *").contains("one of them must be `?`"));
        assert!(cron_error("0 6 ? * ? *").contains("both `?`"));
        assert!(cron_error("0 6 L-3 * ? *").contains("day-of-month field"));
        assert!(cron_error("0 6 ? * 2W *").contains("day-of-week field"));
        assert_eq!(
            next("cron(0 9 ? * WED *)", "2026-11-25T09:00:00Z"),
            "2026-12-02T09:00:00Z"
        );
        assert!(cron_error("0 6 ? * 2#6 *").contains("occurrence"));
        assert!(cron_error("0 6 * FOO ? *").contains("month field"));
        assert!(cron_error("0 6 * * ? 1969").contains("year field"));
        assert!(cron_error("0 L * * ? *").contains("hours field"));
        assert!(cron_error("0/0 6 * * ? *").contains("step"));
        assert!("every day".parse::<Expression>().is_err());
    }

    #[test]
    fn the_templates_schedules_are_read_not_retyped() {
        let template = include_str!("../template.yaml");
        let overrides = BTreeMap::from([("Watchlist".to_owned(), "demo".to_owned())]);
        let schedules = from_template(template, &overrides).unwrap();
        // Every schedule resource of the template, counted in its text.
        let in_text = template.matches("Type: AWS::Scheduler::Schedule\n").count();
        assert_eq!(schedules.len(), in_text);
        let plan = schedules
            .iter()
            .find(|s| s.resource == "ArtistMonitoringSchedule")
            .unwrap();
        assert_eq!(plan.function, "artist-monitoring");
        assert_eq!(plan.source, "cron(0 6 * * ? *)");
        let input: serde_json::Value =
            serde_json::from_str(&plan.input_at(at("2026-11-25T06:00:00Z"))).unwrap();
        assert_eq!(
            input,
            serde_json::json!({"step": "plan", "watchlist": "demo", "scheduledTime": "2026-11-25T06:00:00Z"})
        );
        let functions: std::collections::BTreeSet<&str> =
            schedules.iter().map(|s| s.function.as_str()).collect();
        assert!(functions.len() >= 7, "{functions:?}");
        let verify = schedules
            .iter()
            .filter(|s| s.input.contains("verify-audit"))
            .count();
        assert_eq!(verify, functions.len(), "one audit verify per function");
    }

    #[test]
    fn template_problems_are_named() {
        let base = |zone: &str, arn: &str, input: &str| {
            format!(
                "Parameters: {{}}\nResources:\n  F:\n    Type: AWS::Serverless::Function\n    Metadata: {{BuildProperties: {{Binary: f}}}}\n  S:\n    Type: AWS::Scheduler::Schedule\n    Properties:\n      ScheduleExpression: rate(1 hour)\n      ScheduleExpressionTimezone: {zone}\n      Target:\n        Arn: {arn}\n        Input: {input}\n"
            )
        };
        let ok = from_template(&base("UTC", "!GetAtt F.Arn", "'{}'"), &BTreeMap::new()).unwrap();
        assert_eq!(ok[0].function, "f");
        let zone = from_template(
            &base("Europe/Paris", "!GetAtt F.Arn", "'{}'"),
            &BTreeMap::new(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            zone.contains("resource S") && zone.contains("Europe/Paris"),
            "{zone}"
        );
        let target = from_template(&base("UTC", "!GetAtt G.Arn", "'{}'"), &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(target.contains("target G"), "{target}");
        let sub = from_template(
            &base("UTC", "!GetAtt F.Arn", "!Sub '${Nope}'"),
            &BTreeMap::new(),
        )
        .unwrap_err()
        .to_string();
        assert!(sub.contains("Nope"), "{sub}");
    }
}
