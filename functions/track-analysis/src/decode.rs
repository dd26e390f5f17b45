//! Decoding with symphonia: probe the container, pick the audio track, decode packet by
//! packet and hand each chunk to the [`Analyzer`]; nothing but one packet's samples is held.
//!
//! Limits are checked before and during decoding: the file's size, its declared and its
//! actually decoded duration, its channel count and sample rate. A file over a limit is
//! refused with an error naming the limit, never partially analysed.

use std::io::{Read, Seek};
use std::path::Path;

use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;

use crate::analysis::{AnalysisError, Analyzer};
use crate::features::{Features, Timeline};

/// What the decoder accepts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Largest file, bytes.
    pub max_bytes: u64,
    /// Longest audio, seconds (checked against the header and while decoding).
    pub max_seconds: f64,
    /// Most channels.
    pub max_channels: usize,
    /// Lowest and highest sample rate, Hz.
    pub sample_rates: (u32, u32),
}

impl Default for Limits {
    /// 1 GiB, 4 hours, 16 channels, 8 kHz to 384 kHz.
    fn default() -> Self {
        Self {
            max_bytes: 1 << 30,
            max_seconds: 4.0 * 3600.0,
            max_channels: 16,
            sample_rates: (8_000, 384_000),
        }
    }
}

/// Why a file could not be analysed.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The file could not be opened or read.
    #[error("cannot read the audio file: {0}")]
    Io(#[source] std::io::Error),
    /// The file holds no bytes.
    #[error("the audio file is empty")]
    Empty,
    /// The file is larger than allowed.
    #[error("the audio file is {bytes} bytes, over the limit of {max} bytes")]
    TooLarge {
        /// Its size.
        bytes: u64,
        /// The limit.
        max: u64,
    },
    /// No container or codec we decode recognises the bytes.
    #[error(
        "not a supported audio file ({reason}): MP3, AAC/M4A, FLAC, WAV and Ogg Vorbis are read"
    )]
    Unsupported {
        /// Symphonia's reason.
        reason: String,
    },
    /// The container has no audio track, or none we can decode.
    #[error("the file has no decodable audio track")]
    NoAudioTrack,
    /// The stream's parameters are missing or out of range.
    #[error("the audio stream is unusable: {0}")]
    Stream(String),
    /// The audio is longer than allowed.
    #[error("the audio lasts {seconds:.0} s or more, over the limit of {max:.0} s")]
    TooLong {
        /// Its duration (declared, or decoded so far).
        seconds: f64,
        /// The limit.
        max: f64,
    },
    /// The stream is corrupt before any audio could be decoded.
    #[error("the audio stream is corrupt: {0}")]
    Corrupt(String),
    /// Decoding produced no samples.
    #[error("the file decodes to no audio samples")]
    NoSamples,
    /// The analysis refused the stream.
    #[error(transparent)]
    Analysis(#[from] AnalysisError),
}

/// Packets in a row that may fail to decode before the stream counts as corrupt.
const MAX_CONSECUTIVE_BAD_PACKETS: usize = 64;

/// Analyses the file at `path`: size checked first, the extension used as a hint only.
pub fn analyze_path(path: &Path, limits: &Limits) -> Result<(Features, Timeline), DecodeError> {
    let file = std::fs::File::open(path).map_err(DecodeError::Io)?;
    let bytes = file.metadata().map_err(DecodeError::Io)?.len();
    check_size(bytes, limits)?;
    let ext = path.extension().and_then(|e| e.to_str());
    analyze_source(Box::new(file), ext, limits)
}

fn check_size(bytes: u64, limits: &Limits) -> Result<(), DecodeError> {
    if bytes == 0 {
        return Err(DecodeError::Empty);
    }
    if bytes > limits.max_bytes {
        return Err(DecodeError::TooLarge {
            bytes,
            max: limits.max_bytes,
        });
    }
    Ok(())
}

/// A reader of unknown length that cannot seek (a stream being generated or received).
pub struct Unseekable<R>(pub R);

impl<R: Read> Read for Unseekable<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl<R> Seek for Unseekable<R> {
    fn seek(&mut self, _: std::io::SeekFrom) -> std::io::Result<u64> {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "the stream cannot seek",
        ))
    }
}

impl<R: Read + Send + Sync> MediaSource for Unseekable<R> {
    fn is_seekable(&self) -> bool {
        false
    }
    fn byte_len(&self) -> Option<u64> {
        None
    }
}

/// Analyses any media source; `ext` is a hint for the probe.
pub fn analyze_source(
    source: Box<dyn MediaSource>,
    ext: Option<&str>,
    limits: &Limits,
) -> Result<(Features, Timeline), DecodeError> {
    if let Some(bytes) = source.byte_len() {
        check_size(bytes, limits)?;
    }
    let mss = MediaSourceStream::new(source, Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = ext {
        hint.with_extension(ext);
    }
    let mut format = symphonia::default::get_probe()
        .probe(
            &hint,
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|err| match err {
            SymphoniaError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                DecodeError::Unsupported {
                    reason: "the data ends before any container header".into(),
                }
            }
            other => DecodeError::Unsupported {
                reason: other.to_string(),
            },
        })?;
    let container = format.format_info().short_name.to_owned();
    let track = format
        .default_track(TrackType::Audio)
        .ok_or(DecodeError::NoAudioTrack)?;
    let track_id = track.id;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or(DecodeError::NoAudioTrack)?
        .clone();
    let rate = params
        .sample_rate
        .ok_or_else(|| DecodeError::Stream("no sample rate".into()))?;
    if rate < limits.sample_rates.0 || rate > limits.sample_rates.1 {
        return Err(DecodeError::Stream(format!(
            "sample rate {rate} Hz is outside {} to {} Hz",
            limits.sample_rates.0, limits.sample_rates.1
        )));
    }
    if let Some(frames) = track.num_frames {
        let seconds = frames as f64 / f64::from(rate);
        if seconds > limits.max_seconds {
            return Err(DecodeError::TooLong {
                seconds,
                max: limits.max_seconds,
            });
        }
    }
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .map_err(|e| DecodeError::Unsupported {
            reason: e.to_string(),
        })?;
    let codec = decoder.codec_info().short_name.to_owned();
    let max_frames = (limits.max_seconds * f64::from(rate)).ceil() as u64;
    let mut analyzer: Option<Analyzer> = None;
    let mut planar: Vec<Vec<f32>> = Vec::new();
    let mut bad_in_a_row = 0usize;
    let mut skipped = 0usize;
    loop {
        let packet = match format.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                if let Some(a) = analyzer.as_mut() {
                    a.warn("the stream ends early (truncated file): analysed what was decoded");
                }
                break;
            }
            Err(SymphoniaError::ResetRequired) => {
                if let Some(a) = analyzer.as_mut() {
                    a.warn("the stream changes its track list: analysed the first part");
                }
                break;
            }
            Err(SymphoniaError::IoError(e)) => return Err(DecodeError::Io(e)),
            Err(err) => {
                if analyzer.is_none() {
                    return Err(DecodeError::Corrupt(err.to_string()));
                }
                if let Some(a) = analyzer.as_mut() {
                    a.warn(format!("demuxing stopped early: {err}"));
                }
                break;
            }
        };
        if packet.track_id != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(decoded) => decoded,
            Err(SymphoniaError::DecodeError(reason)) => {
                bad_in_a_row += 1;
                skipped += 1;
                if bad_in_a_row > MAX_CONSECUTIVE_BAD_PACKETS {
                    return Err(DecodeError::Corrupt(format!(
                        "{bad_in_a_row} packets in a row fail to decode ({reason})"
                    )));
                }
                continue;
            }
            Err(SymphoniaError::IoError(_)) => {
                skipped += 1;
                continue;
            }
            Err(err) => return Err(DecodeError::Corrupt(err.to_string())),
        };
        bad_in_a_row = 0;
        let channels = decoded.spec().channels().count();
        if channels == 0 || channels > limits.max_channels {
            return Err(DecodeError::Stream(format!(
                "{channels} channels (at most {} are read)",
                limits.max_channels
            )));
        }
        let spec_rate = decoded.spec().rate();
        if spec_rate != rate {
            return Err(DecodeError::Stream(format!(
                "the sample rate changes from {rate} Hz to {spec_rate} Hz mid-stream"
            )));
        }
        decoded.copy_to_vecs_planar::<f32>(&mut planar);
        let analyzer = match analyzer.as_mut() {
            Some(a) => a,
            None => analyzer.insert(Analyzer::new(rate, channels)?),
        };
        if analyzer.frames_in() + decoded.frames() as u64 > max_frames {
            return Err(DecodeError::TooLong {
                seconds: (analyzer.frames_in() + decoded.frames() as u64) as f64 / f64::from(rate),
                max: limits.max_seconds,
            });
        }
        let slices: Vec<&[f32]> = planar.iter().map(|c| &c[..decoded.frames()]).collect();
        analyzer.push(&slices)?;
    }
    let Some(mut analyzer) = analyzer else {
        return Err(if skipped > 0 {
            DecodeError::Corrupt(format!("none of {skipped} packets decodes"))
        } else {
            DecodeError::NoSamples
        });
    };
    if analyzer.frames_in() == 0 {
        return Err(DecodeError::NoSamples);
    }
    if skipped > 0 {
        analyzer.warn(format!(
            "{skipped} packets failed to decode and were skipped"
        ));
    }
    Ok(analyzer.finish(&container, &codec)?)
}
