"""Replay a realistic multi-week topic stream through the spike detector; print precision, recall and delay.

The stream: a contact centre in Europe/Berlin (each run crosses the spring DST change) with ~2,000 tagged
conversations a weekday over 12 topics (shares 16 % down to 4 %, so a topic's normal peak hour holds ~7 to ~30),
a daily profile with a lunch dip and per-topic tilts, weekends at 45 %, 1 % weekly growth, and log-normal noise
at three levels (the whole day sigma=0.12, each topic's day sigma=0.10, each topic's hour sigma=0.08) under
Poisson arrivals in 15-minute slots. Spikes of 1.5x, 2x, 3x and 5x (that many times what the topic would have
had in those hours) lasting 1.5-4 hours are injected into random topics at random times between 9:00 and 17:00
of the evaluated weeks, weekends included. The first 6 weeks are history; the detector (app.services.spikes,
default settings) runs every 15 minutes over the rest exactly as the worker does: 60-, 30- and 180-minute
windows, same-weekday baselines, today's level from the other topics, baselines inside earlier episodes skipped.

An alert is a true positive when its topic has a spike that started at or before the alert and ended no more
than one window before it; delay = alert time - spike start. Figures are pooled over independent streams.

    .venv/bin/python bench/spikes.py [--seeds 5] [--weeks 12] [--spikes 48]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.services.spikes import (
    EpisodeTracker,
    SpikeSettings,
    assess_windows,
    baseline_windows,
    level_factor,
)

TZ = ZoneInfo("Europe/Berlin")
START = dt.datetime(2025, 2, 3, tzinfo=TZ)  # a Monday; the evaluated weeks straddle the 30 March DST change
SLOT = dt.timedelta(minutes=15)
SHARES = np.array([0.16, 0.14, 0.12, 0.1, 0.09, 0.08, 0.07, 0.06, 0.05, 0.05, 0.04, 0.04])
SIZES = (1.5, 2.0, 3.0, 5.0)
WEEKDAY_VOLUME = 2000.0
WARMUP_WEEKS = 6

# Relative arrivals per local hour (a morning peak, a lunch dip, an afternoon peak, a quiet night).
HOURLY_PROFILE = np.array(
    [
        0.6,
        0.4,
        0.3,
        0.3,
        0.3,
        0.5,
        1.2,
        3.0,
        6.5,
        8.5,
        9.0,
        8.2,
        6.8,
        7.4,
        8.0,
        7.6,
        6.9,
        5.8,
        4.5,
        3.6,
        2.8,
        2.2,
        1.6,
        1.0,
    ]
)
HOURLY_PROFILE = HOURLY_PROFILE / HOURLY_PROFILE.sum()


@dataclass(frozen=True)
class Spike:
    topic: int
    start: int  # slot index
    end: int  # slot index, exclusive
    size: float


def generate(seed: int, weeks: int, n_spikes: int) -> tuple[list[dt.datetime], np.ndarray, np.ndarray, list[Spike]]:
    """Return slot start times (UTC), counts[slot, topic], expected rates[slot, topic] and the injected spikes."""
    rng = np.random.default_rng(seed)
    end = START + dt.timedelta(weeks=weeks)
    slots = []
    t = START.astimezone(dt.UTC)
    while t < end.astimezone(dt.UTC):
        slots.append(t)
        t += SLOT
    n_topics = len(SHARES)
    local = [s.astimezone(TZ) for s in slots]
    hours = np.array([loc.hour + loc.minute / 60 for loc in local])
    days = np.array([(loc.date() - START.date()).days for loc in local])
    weekend = np.array([loc.weekday() >= 5 for loc in local])

    # Each topic tilts the daily shape a little (delivery questions come in the evening, billing in the morning).
    tilt = rng.uniform(-0.35, 0.35, n_topics)
    shape = HOURLY_PROFILE[hours.astype(int)][:, None] * (
        1 + tilt[None, :] * np.cos((hours[:, None] - 13) / 24 * 2 * np.pi)
    )
    base = WEEKDAY_VOLUME * SHARES[None, :] * shape / 4  # per 15-minute slot
    base *= np.where(weekend, 0.45, 1.0)[:, None]
    base *= (1.01 ** (days / 7))[:, None]

    n_days = days.max() + 1
    day_noise = rng.lognormal(0, 0.12, n_days)[days][:, None]
    topic_day_noise = rng.lognormal(0, 0.10, (n_days, n_topics))[days]
    hour_index = days * 24 + hours.astype(int)
    topic_hour_noise = rng.lognormal(0, 0.08, (n_days * 24, n_topics))[hour_index]
    rate = base * day_noise * topic_day_noise * topic_hour_noise

    spikes: list[Spike] = []
    first_eval_day = WARMUP_WEEKS * 7
    attempts = 0
    while len(spikes) < n_spikes and attempts < 100_000:
        attempts += 1
        size = SIZES[len(spikes) % len(SIZES)]
        topic = int(rng.integers(n_topics))
        day = int(rng.integers(first_eval_day, n_days - 1))
        hour = float(rng.uniform(9, 17))
        length = int(rng.integers(6, 17))  # 1.5-4 hours of 15-minute slots
        candidates = np.nonzero((days == day) & (hours >= hour))[0]
        if len(candidates) == 0:
            continue
        start = int(candidates[0])
        spike = Spike(topic, start, start + length, size)
        # Keep two days between spikes of one topic so each is its own episode.
        if any(s.topic == topic and abs(s.start - start) < 2 * 96 for s in spikes):
            continue
        spikes.append(spike)
    # "3x baseline": three times what the topic would have had in those hours that day.
    for s in spikes:
        rate[s.start : s.end, s.topic] *= s.size
    counts = rng.poisson(rate)
    return slots, counts, base, spikes


def replay(slots: list[dt.datetime], counts: np.ndarray, settings: SpikeSettings) -> list[tuple[int, int]]:
    """Run the detector every 15 minutes over the evaluated weeks; return (slot, topic) of each alert."""
    per_window = settings.window_minutes // 15
    lengths = [int(w.total_seconds() // 900) for w in settings.windows]
    level_slots = settings.level_hours * 4
    index = {s: i for i, s in enumerate(slots)}
    cumulative = np.vstack([np.zeros(counts.shape[1], dtype=np.int64), np.cumsum(counts, axis=0)])
    tracker = EpisodeTracker(settings)
    episodes: dict[int, list[tuple[int, int]]] = {}
    alerts = []
    first = WARMUP_WEEKS * 7 * 96
    for i in range(first, len(slots)):
        now = slots[i]  # each window is the slots ending at slot i (exclusive)
        lags = []
        for _, end in baseline_windows(now, settings, TZ):
            j = index.get(end)
            if j is not None and j - max(*lengths, level_slots) >= 0:
                lags.append(j)
        recent = cumulative[i] - cumulative[i - level_slots]
        usual = np.mean([cumulative[j] - cumulative[j - level_slots] for j in lags], axis=0)
        for topic in range(counts.shape[1]):
            level = 1.0
            if level_slots:
                level = level_factor(recent.sum() - recent[topic], usual.sum() - usual[topic], settings)
            observations = []
            for n in lengths:
                observed = int(cumulative[i][topic] - cumulative[i - n][topic])
                usable = [
                    int(cumulative[j][topic] - cumulative[j - n][topic])
                    for j in lags
                    if not any(s < j and j - n < e for s, e in episodes.get(topic, ()))
                ]
                observations.append((n * 15, observed, usable))
            verdict = assess_windows(observations, settings, level)
            event = tracker.step(topic, now, verdict)
            if event == "opened":
                alerts.append((i, topic))
                episodes.setdefault(topic, []).append((i - per_window, 10**9))
            elif event == "closed":
                s, _ = episodes[topic][-1]
                episodes[topic][-1] = (s, i)
    return alerts


def score(
    alerts: list[tuple[int, int]], spikes: list[Spike], per_window: int, base: np.ndarray
) -> tuple[int, int, list[tuple[Spike, int | None]]]:
    """Return (true alerts, false alerts, [(spike, delay in slots or None)])."""
    true_alerts = false_alerts = 0
    found: dict[Spike, int] = {}
    for slot, topic in alerts:
        match = [s for s in spikes if s.topic == topic and s.start <= slot <= s.end + per_window]
        if match:
            true_alerts += 1
            for s in match:
                found.setdefault(s, slot - s.start)
        else:
            false_alerts += 1
    return true_alerts, false_alerts, [(s, found.get(s)) for s in spikes]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="independent streams to replay")
    parser.add_argument(
        "--weeks", type=int, default=12, help=f"weeks per stream (the first {WARMUP_WEEKS} are history)"
    )
    parser.add_argument("--spikes", type=int, default=48, help="spikes injected per stream")
    args = parser.parse_args()
    settings = SpikeSettings()
    per_window = settings.window_minutes // 15
    print(f"settings: {settings}")
    tp = fp = 0
    results: list[tuple[Spike, int | None, float]] = []
    total_conversations = 0
    for seed in range(args.seeds):
        slots, counts, base, spikes = generate(seed, args.weeks, args.spikes)
        total_conversations += int(counts.sum())
        alerts = replay(slots, counts, settings)
        t, f, outcome = score(alerts, spikes, per_window, base)
        tp += t
        fp += f
        for spike, delay in outcome:
            hourly = float(base[spike.start : spike.end, spike.topic].mean() * 4)
            results.append((spike, delay, hourly))
        print(f"seed {seed}: {len(slots)} slots, {int(counts.sum())} conversations, {len(alerts)} alerts ({f} false)")

    print(f"\nstreams: {args.seeds} x {args.weeks} weeks, {total_conversations} tagged conversations in all")
    precision = tp / (tp + fp) if tp + fp else 1.0
    print(f"precision: {precision:.3f}  ({tp} true alerts, {fp} false alerts)")
    print(f"{'spike':>6} {'n':>4} {'recall':>7} {'median delay':>13} {'p90 delay':>10}")
    for size in SIZES:
        rows = [(s, d) for s, d, _ in results if s.size == size]
        hits = [d for _, d in rows if d is not None]
        recall = len(hits) / len(rows) if rows else 0.0
        med = f"{statistics.median(hits) * 15:.0f} min" if hits else "-"
        p90 = f"{np.percentile(np.array(hits) * 15, 90):.0f} min" if hits else "-"
        print(f"{size:>5}x {len(rows):>4} {recall:>7.3f} {med:>13} {p90:>10}")
    print("\n3x spikes by the topic's normal rate during the spike (conversations per hour):")
    for low, high in ((0, 5), (5, 10), (10, 20), (20, 1000)):
        rows = [d for s, d, h in results if s.size == 3.0 and low <= h < high]
        if rows:
            hits = [d for d in rows if d is not None]
            label = f"{low}-{high}/h" if high < 1000 else f">={low}/h"
            med = f"{statistics.median(hits) * 15:.0f} min" if hits else "-"
            print(f"  {label:>9}: {len(hits)}/{len(rows)} detected, median delay {med}")

    def summary(rows: list[int | None]) -> str:
        hits = [d for d in rows if d is not None]
        median = statistics.median(hits) * 15 if hits else float("nan")
        return f"recall {len(hits) / max(1, len(rows)):.3f} (n={len(rows)}), median delay {median:.0f} min"

    print(f"\ntargets: recall(3x) >= 0.9, precision >= 0.9, median delay <= one window ({settings.window_minutes} min)")
    print(f"  precision {precision:.3f}")
    print(f"  3x spikes, all topics and hours: {summary([d for s, d, _ in results if s.size == 3.0])}")
    print(
        "  3x spikes where the topic normally has >= 10 conversations an hour: "
        + summary([d for s, d, h in results if s.size == 3.0 and h >= 10])
    )


if __name__ == "__main__":
    main()
