//! Decoding and analysis of real files, good and bad.

mod common;

use std::io::Read;

use track_analysis::analysis::key::Mode;
use track_analysis::decode::{self, DecodeError, Limits, Unseekable};

fn limits() -> Limits {
    Limits::default()
}

#[test]
fn a_click_track_gives_its_tempo_key_and_level() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("click.wav");
    let mono = common::click_track(44_100, 120.0, 20.0, 0.5);
    common::write_wav(&path, 44_100, 2, &common::spread(&mono, 2));
    let (features, timeline) = decode::analyze_path(&path, &limits()).unwrap();
    assert_eq!(features.source.channels, 2);
    assert_eq!(features.source.sample_rate, 44_100);
    assert!((features.duration_seconds - 20.0).abs() < 0.01);
    let tempo = features.tempo.as_ref().expect("a tempo");
    assert!((tempo.bpm - 120.0).abs() / 120.0 < 0.04, "{tempo:?}");
    let interval = tempo.beats.mean_interval_seconds.unwrap();
    assert!((interval - 0.5).abs() < 0.02, "{interval}");
    let key = features.key.as_ref().expect("a key");
    assert_eq!(
        (key.tonic.as_str(), key.mode),
        ("C", Mode::Major),
        "{key:?}"
    );
    let lufs = features.loudness.integrated_lufs.unwrap();
    assert!((-30.0..-5.0).contains(&lufs), "{lufs}");
    let peak = features.loudness.true_peak_dbtp.unwrap();
    assert!(peak < 0.0 && peak > -8.0, "{peak}");
    assert!(features.onsets.rate_per_second > 1.5 && features.onsets.rate_per_second < 2.5);
    assert_eq!(features.mfcc.mean.len(), 13);
    assert!(features.spectral.centroid_hz.unwrap().mean > 200.0);
    assert!(!timeline.waveform.is_empty() && !timeline.chroma.is_empty());
    assert!(timeline.loudness_lufs.iter().flatten().count() >= 15);
    assert!(features.warnings.is_empty(), "{:?}", features.warnings);
}

#[test]
fn a_sine_at_a_known_level_measures_that_level() {
    // A 1 kHz sine at -20 dBFS peak in both channels of a stereo file reads about
    // -20 - 3.01 + 3.01 (two channels) + 0.69 (K-weighting at 1 kHz) = -19.3 LUFS... with
    // BS.1770's -0.691 offset: -23.0 + 3.0 ~ -20.0 + 0.0 within half a LU of -20.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sine.wav");
    let mono = common::sine(48_000, 997.0, 10.0, 0.1);
    common::write_wav(&path, 48_000, 2, &common::spread(&mono, 2));
    let (features, _) = decode::analyze_path(&path, &limits()).unwrap();
    let lufs = features.loudness.integrated_lufs.unwrap();
    assert!((lufs - (-20.0)).abs() < 0.5, "{lufs}");
    let lra = features.loudness.range_lu.unwrap();
    assert!(lra < 1.0, "{lra}");
    let peak = features.loudness.sample_peak_dbfs.unwrap();
    assert!((peak + 20.0).abs() < 0.1, "{peak}");
}

#[test]
fn silence_has_absent_loudness_tempo_and_key_never_nan() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("silence.wav");
    common::write_wav(&path, 44_100, 2, &vec![0.0; 44_100 * 2 * 5]);
    let (features, timeline) = decode::analyze_path(&path, &limits()).unwrap();
    assert_eq!(features.loudness.integrated_lufs, None);
    assert_eq!(features.loudness.range_lu, None);
    assert_eq!(features.loudness.true_peak_dbtp, None);
    assert_eq!(features.rms.overall_dbfs, None);
    assert!(features.tempo.is_none());
    assert!(features.key.is_none());
    assert_eq!(features.onsets.count, 0);
    let json = serde_json::to_string(&features).unwrap();
    assert!(!json.contains("NaN") && !json.contains("inf"), "{json}");
    assert!(timeline.loudness_lufs.iter().all(Option::is_none));
}

#[test]
fn eight_khz_mono_is_resampled_and_analysed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phone.wav");
    common::write_wav(
        &path,
        8_000,
        1,
        &common::click_track(8_000, 100.0, 12.0, 0.5),
    );
    let (features, _) = decode::analyze_path(&path, &limits()).unwrap();
    assert_eq!(features.source.sample_rate, 8_000);
    assert!((features.duration_seconds - 12.0).abs() < 0.01);
    // 12 s at 22050 Hz, hop 512: 1 + 264600 / 512 frames.
    assert_eq!(features.analysis.frames, 1 + 264_600 / 512);
    let bpm = features.tempo.unwrap().bpm;
    assert!(
        (bpm - 100.0).abs() / 100.0 < 0.04 || (bpm - 200.0).abs() / 200.0 < 0.04,
        "{bpm}"
    );
    assert!(features.loudness.integrated_lufs.is_some());
}

#[test]
fn a_192_khz_six_channel_file_is_analysed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("surround.wav");
    let mono = common::sine(192_000, 440.0, 2.0, 0.25);
    common::write_wav(&path, 192_000, 6, &common::spread(&mono, 6));
    let (features, _) = decode::analyze_path(&path, &limits()).unwrap();
    assert_eq!(features.source.channels, 6);
    assert_eq!(features.source.sample_rate, 192_000);
    assert!((features.duration_seconds - 2.0).abs() < 0.01);
    assert!(features.loudness.integrated_lufs.is_some());
    let chroma = &features.chroma.mean;
    let best = (0..12)
        .max_by(|a, b| chroma[*a].total_cmp(&chroma[*b]))
        .unwrap();
    assert_eq!(best, 9, "A440 is pitch class A: {chroma:?}");
}

#[test]
fn an_empty_file_is_refused_as_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.mp3");
    std::fs::write(&path, b"").unwrap();
    let err = decode::analyze_path(&path, &limits()).unwrap_err();
    assert!(matches!(err, DecodeError::Empty), "{err}");
}

#[test]
fn text_named_mp3_is_refused_as_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("song.mp3");
    std::fs::write(
        &path,
        "this is not audio, just a text file named .mp3\n".repeat(200),
    )
    .unwrap();
    let err = decode::analyze_path(&path, &limits()).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::Unsupported { .. } | DecodeError::Corrupt(_) | DecodeError::NoSamples
        ),
        "{err}"
    );
    assert!(err.to_string().contains("audio"), "{err}");
}

#[test]
fn a_truncated_file_analyses_what_is_there_or_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let mono = common::click_track(44_100, 120.0, 6.0, 0.5);
    let bytes = common::wav_bytes(44_100, 1, &mono);
    // Cut mid-stream: the header promises 6 s, the data holds about 3.
    let cut = dir.path().join("cut.wav");
    std::fs::write(&cut, &bytes[..bytes.len() / 2 + 1]).unwrap();
    let (features, _) = decode::analyze_path(&cut, &limits()).unwrap();
    assert!(
        (features.duration_seconds - 3.0).abs() < 0.1,
        "{}",
        features.duration_seconds
    );
    // Cut inside the header: nothing to decode.
    let stub = dir.path().join("stub.wav");
    std::fs::write(&stub, &bytes[..20]).unwrap();
    let err = decode::analyze_path(&stub, &limits()).unwrap_err();
    assert!(matches!(err, DecodeError::Unsupported { .. }), "{err}");
}

#[test]
fn a_file_over_the_byte_limit_is_refused_before_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.wav");
    common::write_wav(&path, 44_100, 1, &vec![0.0; 44_100]);
    let small = Limits {
        max_bytes: 1000,
        ..limits()
    };
    let err = decode::analyze_path(&path, &small).unwrap_err();
    assert!(
        matches!(err, DecodeError::TooLarge { max: 1000, .. }),
        "{err}"
    );
}

/// Three hours of 44.1 kHz stereo, generated as it is read: never on disk, never in memory.
struct ThreeHours {
    header: Vec<u8>,
    pos: u64,
    total: u64,
}

impl Read for ThreeHours {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        while n < buf.len() && self.pos < self.total {
            let b = if (self.pos as usize) < self.header.len() {
                self.header[self.pos as usize]
            } else {
                // A quiet square-ish wave, little-endian 16-bit.
                let sample = (self.pos / 2) % 100;
                let v: i16 = if sample < 50 { 1000 } else { -1000 };
                v.to_le_bytes()[(self.pos % 2) as usize]
            };
            buf[n] = b;
            n += 1;
            self.pos += 1;
        }
        Ok(n)
    }
}

#[test]
fn a_three_hour_stream_is_refused_by_its_header_and_while_decoding() {
    let frames = 3 * 3600 * 44_100u64;
    let header = common::wav_header(44_100, 2, frames);
    let total = header.len() as u64 + frames * 4;
    let limits = Limits {
        max_seconds: 30.0,
        ..limits()
    };
    // Declared in the header: refused before a sample is decoded.
    let source = ThreeHours {
        header: header.clone(),
        pos: 0,
        total,
    };
    let err =
        decode::analyze_source(Box::new(Unseekable(source)), Some("wav"), &limits).unwrap_err();
    match err {
        DecodeError::TooLong { seconds, max } => {
            assert!((seconds - 10_800.0).abs() < 1.0, "{seconds}");
            assert_eq!(max, 30.0);
        }
        other => panic!("{other}"),
    }
    // A header that hides the length (data size 0xFFFFFFFF, as streaming writers do) is cut
    // by the decoded duration: the error arrives after 30 s of audio, not 3 hours.
    let mut streaming = header;
    let len = streaming.len();
    streaming[len - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
    streaming[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    let source = ThreeHours {
        header: streaming,
        pos: 0,
        total,
    };
    let err =
        decode::analyze_source(Box::new(Unseekable(source)), Some("wav"), &limits).unwrap_err();
    assert!(matches!(err, DecodeError::TooLong { .. }), "{err}");
}
