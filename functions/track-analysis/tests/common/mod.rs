//! Synthetic audio for the tests: a 16-bit PCM WAV writer and signal generators.
#![allow(dead_code)]

use std::f64::consts::PI;
use std::path::Path;

/// The RIFF/WAVE header of 16-bit PCM `channels` x `frames` at `rate`.
pub fn wav_header(rate: u32, channels: u16, frames: u64) -> Vec<u8> {
    let data_len = (frames * u64::from(channels) * 2).min(u64::from(u32::MAX - 36)) as u32;
    let mut h = Vec::with_capacity(44);
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&(36 + data_len).to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes());
    h.extend_from_slice(&channels.to_le_bytes());
    h.extend_from_slice(&rate.to_le_bytes());
    h.extend_from_slice(&(rate * u32::from(channels) * 2).to_le_bytes());
    h.extend_from_slice(&(channels * 2).to_le_bytes());
    h.extend_from_slice(&16u16.to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&data_len.to_le_bytes());
    h
}

/// Encodes interleaved samples (-1..1) as a WAV file's bytes.
pub fn wav_bytes(rate: u32, channels: u16, interleaved: &[f32]) -> Vec<u8> {
    let frames = interleaved.len() as u64 / u64::from(channels);
    let mut out = wav_header(rate, channels, frames);
    for s in interleaved {
        let v = (s.clamp(-1.0, 1.0) * 32767.0).round() as i16;
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Writes a WAV file.
pub fn write_wav(path: &Path, rate: u32, channels: u16, interleaved: &[f32]) {
    std::fs::write(path, wav_bytes(rate, channels, interleaved)).unwrap();
}

/// C major chords, I-IV-V-I: C E G, F A C, G B D, C E G (Hz).
const C_MAJOR_CADENCE: [[f64; 3]; 4] = [
    [261.63, 329.63, 392.00],
    [349.23, 440.00, 523.25],
    [392.00, 493.88, 587.33],
    [261.63, 329.63, 392.00],
];

/// A click track: a decaying noise burst on every beat at `bpm` over a I-IV-V-I cadence in
/// C major (one chord every two seconds), mono, `seconds` long.
pub fn click_track(rate: u32, bpm: f64, seconds: f64, amplitude: f64) -> Vec<f32> {
    let n = (seconds * f64::from(rate)) as usize;
    let period = 60.0 / bpm;
    let mut seed = 0x2545_f491_u32;
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            let since = t % period;
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let noise = f64::from(seed >> 8) / f64::from(1u32 << 23) - 1.0;
            let click = (-since * 60.0).exp() * noise;
            let chord = C_MAJOR_CADENCE[(t / 2.0) as usize % 4]
                .iter()
                .map(|f| (2.0 * PI * f * t).sin())
                .sum::<f64>()
                / 3.0;
            (amplitude * (0.6 * click + 0.4 * chord)) as f32
        })
        .collect()
}

/// A sine of `freq` Hz at peak `amplitude`, mono.
pub fn sine(rate: u32, freq: f64, seconds: f64, amplitude: f64) -> Vec<f32> {
    let n = (seconds * f64::from(rate)) as usize;
    (0..n)
        .map(|i| (amplitude * (2.0 * PI * freq * i as f64 / f64::from(rate)).sin()) as f32)
        .collect()
}

/// Interleaves a mono signal into `channels` identical channels.
pub fn spread(mono: &[f32], channels: usize) -> Vec<f32> {
    mono.iter()
        .flat_map(|s| std::iter::repeat_n(*s, channels))
        .collect()
}
