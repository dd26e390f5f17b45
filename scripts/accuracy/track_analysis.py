#!/usr/bin/env python3
"""Accuracy harness of track-analysis: our extractor against librosa and pyloudnorm.

Synthesises test audio with known tempo, key and level, runs our CLI
(`tasks analyze FILE --json`) and the references on each file, and prints the agreement:

- tempo: ACC1 (within 4 % of the true BPM) and ACC2 (also allowing the octave errors x2, x1/2,
  x3, x1/3), for ours and for librosa.beat.beat_track, and how often the two agree (ACC1);
- key: exact tonic and mode, and "close" (exact, a fifth away, relative or parallel), for ours
  and for the same Krumhansl-Kessler profiles applied to librosa's chroma_cqt;
- loudness: integrated LUFS against pyloudnorm (BS.1770-4) and against the level synthesised;
- spectral centroid, roll-off, zero-crossing rate and RMS means against librosa's.

Usage (from the repository root):
    bash scripts/accuracy/install.sh
    cargo build --release --bin tasks
    .venv/audio/bin/python scripts/accuracy/track_analysis.py [--cli target/release/tasks]
        [--out .local/accuracy] [--json results.json]
"""

import argparse
import json
import math
import os
import subprocess
import sys
import time

import librosa
import numpy as np
import pyloudnorm
import soundfile as sf

SR = 44100
PITCHES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
RNG = np.random.default_rng(20261202)


# ---------------------------------------------------------------- synthesis
def drums(bpm, seconds=30.0, sr=SR, swing_bed=True):
    """Kick on every beat, snare on 2 and 4, closed hi-hat on eighths, a bass line under it."""
    n = int(seconds * sr)
    y = np.zeros(n)
    beat = 60.0 / bpm
    t_k = np.arange(int(0.25 * sr)) / sr
    kick = np.sin(2 * np.pi * (50 + 70 * np.exp(-t_k * 30)) * t_k) * np.exp(-t_k * 18)
    t_s = np.arange(int(0.15 * sr)) / sr
    snare = RNG.standard_normal(len(t_s)) * np.exp(-t_s * 30) * 0.6
    snare += np.sin(2 * np.pi * 190 * t_s) * np.exp(-t_s * 25) * 0.4
    t_h = np.arange(int(0.04 * sr)) / sr
    hat = np.diff(RNG.standard_normal(len(t_h) + 1)) * np.exp(-t_h * 120) * 0.15

    def add(sample, at):
        i = int(at * sr)
        if i >= n:
            return
        m = min(len(sample), n - i)
        y[i:i + m] += sample[:m]

    k = 0
    while k * beat < seconds:
        at = k * beat
        add(kick, at)
        if k % 2 == 1:
            add(snare, at)
        add(hat, at)
        add(hat * 0.6, at + beat / 2)
        k += 1
    if swing_bed:
        t = np.arange(n) / sr
        y += 0.08 * np.sin(2 * np.pi * 55.0 * t) * (0.6 + 0.4 * np.cos(2 * np.pi * t / (4 * beat)))
    y /= np.max(np.abs(y)) * 1.25
    return np.stack([y, y], axis=1)


def tone(freq, t, harmonics=4):
    return sum(np.sin(2 * np.pi * freq * h * t) / h for h in range(1, harmonics + 1))


def chords(tonic, mode, seconds=16.0, sr=SR):
    """I-IV-V-I (major) or i-iv-V-i (minor, harmonic V) triads with a bass root, 2 s a chord."""
    third = 4 if mode == "major" else 3
    progression = [(0, third, 7), (5, 5 + third, 12), (7, 11, 14), (0, third, 7)]
    n_chord = int(2.0 * sr)
    t = np.arange(n_chord) / sr
    env = np.minimum(1.0, t * 20) * np.exp(-t * 0.6)
    parts = []
    total = int(seconds * sr)
    i = 0
    while sum(len(p) for p in parts) < total:
        root, a, b = progression[i % 4]
        midi0 = 60 + tonic
        x = sum(tone(440.0 * 2 ** ((midi0 + s - 69) / 12), t) for s in (root, a, b))
        x += 0.7 * tone(440.0 * 2 ** ((midi0 + root - 12 - 69) / 12), t)
        parts.append(x * env)
        i += 1
    y = np.concatenate(parts)[:total]
    y /= np.max(np.abs(y)) * 1.5
    return np.stack([y, y], axis=1)


def pink(seconds=20.0, sr=48000):
    n = int(seconds * sr)
    white = RNG.standard_normal(n)
    spectrum = np.fft.rfft(white)
    f = np.fft.rfftfreq(n, 1 / sr)
    f[0] = f[1]
    y = np.fft.irfft(spectrum / np.sqrt(f), n)
    return np.stack([y, y * 0.9], axis=1)


def level_files(out):
    files = []
    for target in (-30.0, -23.0, -16.0, -10.0):
        for kind in ("pink", "sine"):
            sr = 48000
            if kind == "pink":
                y = pink(sr=sr)
            else:
                t = np.arange(int(20 * sr)) / sr
                s = np.sin(2 * np.pi * 997.0 * t)
                y = np.stack([s, s], axis=1)
            meter = pyloudnorm.Meter(sr)
            y = pyloudnorm.normalize.loudness(y, meter.integrated_loudness(y), target)
            if np.max(np.abs(y)) >= 1.0:
                continue
            path = os.path.join(out, f"level_{kind}_{int(-target)}.wav")
            sf.write(path, y, sr, subtype="FLOAT")
            files.append({"path": path, "target": target, "sr": sr})
    return files


FORMATS = [("wav", "PCM_16"), ("flac", "PCM_16"), ("ogg", "VORBIS"), ("mp3", "MPEG_LAYER_III")]


def write(path_stem, y, sr, fmt_index):
    ext, subtype = FORMATS[fmt_index % len(FORMATS)]
    path = f"{path_stem}.{ext}"
    try:
        sf.write(path, y, sr, subtype=subtype)
    except Exception:  # an encoder missing from this libsndfile: fall back to WAV
        path = f"{path_stem}.wav"
        sf.write(path, y, sr, subtype="PCM_16")
    return path


# ---------------------------------------------------------------- references
def ks_key(chroma_mean):
    best = []
    for tonic in range(12):
        for mode, profile in (("major", MAJOR), ("minor", MINOR)):
            r = np.corrcoef(chroma_mean, np.roll(profile, tonic))[0, 1]
            best.append((r, tonic, mode))
    best.sort(reverse=True)
    return best[0][1], best[0][2]


def librosa_reference(path):
    y, sr = librosa.load(path, sr=22050, mono=True)
    tempo, _ = librosa.beat.beat_track(y=y, sr=sr)
    chroma = librosa.feature.chroma_cqt(y=y, sr=sr)
    tonic, mode = ks_key(chroma.mean(axis=1))
    return {
        "bpm": float(np.atleast_1d(tempo)[0]),
        "key": (tonic, mode),
        "centroid": float(librosa.feature.spectral_centroid(y=y, sr=sr).mean()),
        "rolloff": float(librosa.feature.spectral_rolloff(y=y, sr=sr).mean()),
        "zcr": float(librosa.feature.zero_crossing_rate(y).mean()),
        "rms": float(librosa.feature.rms(y=y).mean()),
    }


def ours(cli, path):
    started = time.perf_counter()
    proc = subprocess.run([cli, "analyze", path, "--json"], capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{path}: {proc.stderr.strip()}")
    features = json.loads(proc.stdout)
    return features, elapsed


# ---------------------------------------------------------------- scoring
def acc1(est, truth):
    return est is not None and abs(est - truth) <= 0.04 * truth


def acc2(est, truth):
    return est is not None and any(acc1(est, truth * m) for m in (1, 2, 0.5, 3, 1 / 3))


def key_close(est, truth):
    if est is None:
        return False
    (t1, m1), (t2, m2) = est, truth
    if (t1, m1) == (t2, m2):
        return True
    if m1 == m2 and (t1 - t2) % 12 in (5, 7):
        return True
    relative = (t2 + 9) % 12 if m2 == "major" else (t2 + 3) % 12
    if m1 != m2 and t1 == relative:
        return True
    return m1 != m2 and t1 == t2


def pct(flags):
    return 100.0 * sum(flags) / max(1, len(flags))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cli", default=os.environ.get("TRACK_ANALYSIS_CLI", "target/release/tasks"))
    parser.add_argument("--out", default=".local/accuracy")
    parser.add_argument("--json", default=None, help="write the per-file results here")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    rows = {"tempo": [], "key": [], "loudness": [], "spectral": []}
    tempos = [72, 85, 90, 100, 108, 115, 120, 124, 128, 135, 140, 150, 160, 174]
    for i, bpm in enumerate(tempos):
        path = write(os.path.join(args.out, f"tempo_{bpm}"), drums(bpm), SR, i)
        features, elapsed = ours(args.cli, path)
        ref = librosa_reference(path)
        est = (features.get("tempo") or {}).get("bpm")
        rows["tempo"].append({"file": os.path.basename(path), "truth": bpm, "ours": est, "librosa": ref["bpm"], "seconds": elapsed})
        spectral = features["spectral"]
        rows["spectral"].append({
            "file": os.path.basename(path),
            "centroid": (spectral["centroidHz"]["mean"], ref["centroid"]),
            "rolloff": (spectral["rolloffHz"]["mean"], ref["rolloff"]),
            "zcr": (features["zeroCrossingRate"]["mean"], ref["zcr"]),
            "rms": (features["rms"]["frame"]["mean"], ref["rms"]),
        })
    for i, (tonic, mode) in enumerate([(t, m) for t in range(12) for m in ("major", "minor")]):
        path = write(os.path.join(args.out, f"key_{PITCHES[tonic]}_{mode}"), chords(tonic, mode), SR, i)
        features, _ = ours(args.cli, path)
        key = features.get("key")
        est = (key["pitchClass"], key["mode"]) if key else None
        ref = librosa_reference(path)
        rows["key"].append({"file": os.path.basename(path), "truth": (tonic, mode), "ours": est, "librosa": ref["key"]})
    for item in level_files(args.out):
        features, _ = ours(args.cli, item["path"])
        data, sr = sf.read(item["path"])
        ref = pyloudnorm.Meter(sr).integrated_loudness(data)
        rows["loudness"].append({"file": os.path.basename(item["path"]), "target": item["target"], "ours": features["loudness"]["integratedLufs"], "pyloudnorm": ref})

    t = rows["tempo"]
    print("## Tempo (%d synthetic drum patterns, 30 s, 72-174 BPM, WAV/FLAC/Ogg/MP3)" % len(t))
    print("| | ACC1 (4 %) | ACC2 (octave errors allowed) |")
    print("|---|---|---|")
    print("| ours | %.0f %% | %.0f %% |" % (pct([acc1(r["ours"], r["truth"]) for r in t]), pct([acc2(r["ours"], r["truth"]) for r in t])))
    print("| librosa %s beat_track | %.0f %% | %.0f %% |" % (librosa.__version__, pct([acc1(r["librosa"], r["truth"]) for r in t]), pct([acc2(r["librosa"], r["truth"]) for r in t])))
    print("| ours vs librosa (within 4 %%) | %.0f %% | |" % pct([acc1(r["ours"], r["librosa"]) for r in t]))
    print()
    print("| file | truth | ours | librosa |")
    print("|---|---|---|---|")
    for r in t:
        print("| %s | %d | %s | %.1f |" % (r["file"], r["truth"], "%.1f" % r["ours"] if r["ours"] else "-", r["librosa"]))
    k = rows["key"]
    print()
    print("## Key (%d synthetic cadences, 12 tonics x major/minor, 16 s)" % len(k))
    print("| | exact | close (fifth, relative, parallel) |")
    print("|---|---|---|")
    print("| ours | %.0f %% | %.0f %% |" % (pct([r["ours"] == r["truth"] for r in k]), pct([key_close(r["ours"], r["truth"]) for r in k])))
    print("| librosa chroma_cqt + same profiles | %.0f %% | %.0f %% |" % (pct([tuple(r["librosa"]) == r["truth"] for r in k]), pct([key_close(tuple(r["librosa"]), r["truth"]) for r in k])))
    wrong = [r for r in k if r["ours"] != r["truth"]]
    for r in wrong:
        got = "%s %s" % (PITCHES[r["ours"][0]], r["ours"][1]) if r["ours"] else "none"
        print("  ours wrong: %s -> %s" % (r["file"], got))
    l = rows["loudness"]
    diffs = [abs(r["ours"] - r["pyloudnorm"]) for r in l if r["ours"] is not None]
    tdiffs = [abs(r["ours"] - r["target"]) for r in l if r["ours"] is not None]
    print()
    print("## Integrated loudness (%d files: pink noise and 997 Hz sine at -30 to -10 LUFS, 48 kHz)" % len(l))
    print("| | mean abs. difference | max abs. difference |")
    print("|---|---|---|")
    print("| ours vs pyloudnorm %s | %.3f LU | %.3f LU |" % (pyloudnorm.__version__ if hasattr(pyloudnorm, "__version__") else "", np.mean(diffs), np.max(diffs)))
    print("| ours vs synthesised level | %.3f LU | %.3f LU |" % (np.mean(tdiffs), np.max(tdiffs)))
    s = rows["spectral"]
    print()
    print("## Frame features vs librosa (mean over frames, %d drum files)" % len(s))
    print("| feature | mean relative difference | max relative difference |")
    print("|---|---|---|")
    for name in ("centroid", "rolloff", "zcr", "rms"):
        rel = [abs(a - b) / abs(b) for a, b in (r[name] for r in s) if b]
        print("| %s | %.1f %% | %.1f %% |" % (name, 100 * np.mean(rel), 100 * np.max(rel)))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
