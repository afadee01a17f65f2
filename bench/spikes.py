"""Replay a realistic multi-week topic stream through the spike detector; print precision, recall and delay.

The stream: a contact centre in Europe/Berlin (each run crosses the spring DST change) with ~2,000 tagged
conversations a weekday over 12 topics (shares 16 % down to 4 %, so a topic's normal peak hour holds ~7 to ~30),
a daily profile with a lunch dip and per-topic tilts, weekends at 45 %, 1 % weekly growth, and log-normal noise
at three levels (the whole day sigma=0.12, each topic's day sigma=0.10, each topic's hour sigma=0.08) under
Poisson arrivals in 15-minute slots, each slot's arrivals then spread evenly over its three 5-minute steps.
Spikes of 1.5x, 2x, 3x and 5x (that many times what the topic would have had in those hours) lasting 1.5-4 hours
are injected into random topics at random times between 9:00 and 17:00 of the evaluated weeks, weekends
included. The first 6 weeks are history; the detector (app.services.spikes, default settings unless --set) runs
every ``every_minutes`` over the rest exactly as the worker does: its ladder of windows, the topic's share of
the traffic over every baseline day, the same weekday's traffic, today's level from the other topics, baseline
days inside earlier episodes skipped.

An alert is a true positive when its topic has a spike that started at or before the alert and ended no more
than one window before it; delay = alert time - spike start. Figures are printed per stream and pooled.

    .venv/bin/python bench/spikes.py [--seeds 5] [--first-seed 0] [--weeks 12] [--spikes 48] [--set alpha=2e-4]
"""

from __future__ import annotations

import argparse
import dataclasses
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
    Window,
    assess_windows,
    band_exposure,
    baseline_days,
    robust_level,
)

TZ = ZoneInfo("Europe/Berlin")
START = dt.datetime(2025, 2, 3, tzinfo=TZ)  # a Monday; the evaluated weeks straddle the 30 March DST change
SLOT = dt.timedelta(minutes=15)  # the noise and the spikes change at most every 15 minutes
STEP = dt.timedelta(minutes=5)  # the replayed stream's resolution: evaluations and windows fall on it
PER_HOUR = 12
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
    start: int  # 5-minute slot index
    end: int  # 5-minute slot index, exclusive
    size: float


def generate(seed: int, weeks: int, n_spikes: int) -> tuple[list[dt.datetime], np.ndarray, np.ndarray, list[Spike]]:
    """Return 5-minute slot start times (UTC), counts[slot, topic], expected rates[slot, topic], the spikes."""
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
    # Arrivals at a constant rate within a 15-minute slot fall evenly (multinomially) into its 5-minute thirds;
    # a generator of their own leaves the 15-minute counts exactly as they were drawn.
    thirds = np.random.default_rng([seed, 5]).multinomial(counts, [1 / 3] * 3)  # [slot, topic, third]
    fine = [t + k * STEP for t in slots for k in range(3)]
    fine_spikes = [Spike(s.topic, 3 * s.start, 3 * s.end, s.size) for s in spikes]
    return fine, thirds.transpose(0, 2, 1).reshape(-1, n_topics), np.repeat(base / 3, 3, axis=0), fine_spikes


def replay(slots: list[dt.datetime], counts: np.ndarray, settings: SpikeSettings) -> list[tuple[int, int]]:
    """Run the detector every ``every_minutes`` over the evaluated weeks as the worker does; return its alerts.

    Each alert is (slot, topic): the evaluation at the start of ``slot`` judges the windows ending there.
    """
    step = int(STEP.total_seconds() // 60)
    if settings.every_minutes % step or any(w % STEP for w in settings.windows) or settings.band_minutes % step:
        raise SystemExit(f"every_minutes, the windows and band_minutes must be multiples of {step} minutes")
    lengths = [int(w / STEP) for w in settings.windows]
    longest, pad = max(lengths), settings.band_minutes // step
    level_slots = settings.level_hours * PER_HOUR
    reach = max(longest + pad, level_slots)
    index = {s: i for i, s in enumerate(slots)}
    n_topics = counts.shape[1]
    cumulative = np.vstack([np.zeros(n_topics, dtype=np.int64), np.cumsum(counts, axis=0)])
    traffic = cumulative.sum(axis=1)  # one topic per conversation here, so all topics' traffic is the sum
    tracker = EpisodeTracker(settings)
    episodes: dict[int, list[tuple[int, int]]] = {}  # topic -> alert ranges (slots), as the Alert rows
    alerts = []
    first = WARMUP_WEEKS * 7 * 24 * PER_HOUR
    for i in range(first, len(slots), settings.every_minutes // step):
        now = slots[i]
        days = [(back, index[end]) for back, end in baseline_days(now, settings, TZ) if end in index]
        days = [(back, j) for back, j in days if j - reach >= 0]
        ends = np.array([j for _, j in days])
        weeks = np.array([back % 7 == 0 for back, _ in days])
        band_traffic = {n: traffic[ends + pad] - traffic[ends - n - pad] for n in lengths}
        window_traffic = {n: traffic[ends] - traffic[ends - n] for n in lengths}
        bands = {n: cumulative[ends + pad] - cumulative[ends - n - pad] for n in lengths}  # [day, topic]
        today = cumulative[i] - cumulative[i - level_slots]
        usual_by_day = cumulative[ends] - cumulative[ends - level_slots]  # [day, topic]
        for topic in range(n_topics):
            usable = np.array(
                [not any(s < j + pad and j - longest - pad < e for s, e in episodes.get(topic, ())) for _, j in days]
            )
            usable_weeks = usable & weeks
            verdict = None
            if usable_weeks.sum() >= settings.min_baseline_weeks:
                observations = [
                    Window(
                        n * step,
                        int(cumulative[i, topic] - cumulative[i - n, topic]),
                        [int(c) for c in bands[n][usable, topic]],
                        band_exposure(
                            [int(t) for t in band_traffic[n][usable]],
                            [int(t) for t in window_traffic[n][usable_weeks]],
                            (n + 2 * pad) / n,
                        ),
                    )
                    for n in lengths
                ]
                level = 1.0
                if level_slots:
                    others = np.arange(n_topics) != topic
                    level = robust_level(
                        today[others].tolist(), usual_by_day[usable_weeks][:, others].mean(axis=0).tolist(), settings
                    )
                verdict = assess_windows(observations, settings, level)
            event = tracker.step(topic, now, verdict)
            if event == "opened":
                assert verdict is not None
                alerts.append((i, topic))
                episodes.setdefault(topic, []).append((i - verdict.window_minutes // step, 10**9))
            elif event == "closed":
                s, _ = episodes[topic][-1]
                episodes[topic][-1] = (s, i)
    return alerts


@dataclass(frozen=True)
class Outcome:
    """One stream's alerts against its spikes."""

    true_alerts: int
    false_alerts: int
    found: list[tuple[Spike, int | None, float]]  # (spike, delay in minutes or None, topic's normal rate per hour)

    @property
    def precision(self) -> float:
        alerts = self.true_alerts + self.false_alerts
        return self.true_alerts / alerts if alerts else 1.0


def score(alerts: list[tuple[int, int]], spikes: list[Spike], grace: int, base: np.ndarray) -> Outcome:
    """Match alerts to spikes: an alert is true when its topic's spike began at or before it and ended at most
    ``grace`` slots (one window) earlier."""
    true_alerts = false_alerts = 0
    found: dict[Spike, int] = {}
    for slot, topic in alerts:
        match = [s for s in spikes if s.topic == topic and s.start <= slot <= s.end + grace]
        if match:
            true_alerts += 1
            for s in match:
                found.setdefault(s, (slot - s.start) * int(STEP.total_seconds() // 60))
        else:
            false_alerts += 1
    rows = [(s, found.get(s), float(base[s.start : s.end, s.topic].mean() * PER_HOUR)) for s in spikes]
    return Outcome(true_alerts, false_alerts, rows)


def summary(rows: list[int | None]) -> str:
    hits = [d for d in rows if d is not None]
    median = statistics.median(hits) if hits else float("nan")
    return f"recall {len(hits) / max(1, len(rows)):.3f} ({len(hits)}/{len(rows)}), median delay {median:.0f} min"


def parse_settings(overrides: list[str]) -> SpikeSettings:
    """The detector's defaults with ``name=value`` overrides (the SPIKE_* settings, lower case)."""
    settings = SpikeSettings()
    for item in overrides:
        name, _, value = item.partition("=")
        if name not in {f.name for f in dataclasses.fields(settings)}:
            raise SystemExit(f"unknown setting {name!r}")
        settings = dataclasses.replace(settings, **{name: type(getattr(settings, name))(value)})
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="independent streams to replay")
    parser.add_argument("--first-seed", type=int, default=0, help="seed of the first stream")
    parser.add_argument(
        "--weeks", type=int, default=12, help=f"weeks per stream (the first {WARMUP_WEEKS} are history)"
    )
    parser.add_argument("--spikes", type=int, default=48, help="spikes injected per stream")
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="override a setting, e.g. every_minutes=15"
    )
    args = parser.parse_args()
    settings = parse_settings(args.set)
    grace = settings.window_minutes // int(STEP.total_seconds() // 60)
    print(f"settings: {settings}")
    tp = fp = 0
    results: list[tuple[Spike, int | None, float]] = []
    total_conversations = 0
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        slots, counts, base, spikes = generate(seed, args.weeks, args.spikes)
        total_conversations += int(counts.sum())
        alerts = replay(slots, counts, settings)
        outcome = score(alerts, spikes, grace, base)
        tp += outcome.true_alerts
        fp += outcome.false_alerts
        results.extend(outcome.found)
        three = [d for s, d, _ in outcome.found if s.size == 3.0]
        print(
            f"seed {seed}: {int(counts.sum())} conversations, {len(alerts)} alerts ({outcome.false_alerts} false);"
            f" precision {outcome.precision:.3f}; 3x {summary(three)};"
            f" all sizes {summary([d for _, d, _ in outcome.found])}",
            flush=True,
        )

    print(f"\nstreams: {args.seeds} x {args.weeks} weeks, {total_conversations} tagged conversations in all")
    precision = tp / (tp + fp) if tp + fp else 1.0
    print(f"precision: {precision:.3f}  ({tp} true alerts, {fp} false alerts)")
    print(f"{'spike':>6} {'n':>4} {'recall':>7} {'median delay':>13} {'p90 delay':>10}")
    for size in SIZES:
        rows = [(s, d) for s, d, _ in results if s.size == size]
        hits = [d for _, d in rows if d is not None]
        recall = len(hits) / len(rows) if rows else 0.0
        med = f"{statistics.median(hits):.0f} min" if hits else "-"
        p90 = f"{np.percentile(hits, 90):.0f} min" if hits else "-"
        print(f"{size:>5}x {len(rows):>4} {recall:>7.3f} {med:>13} {p90:>10}")
    print("\n3x spikes by the topic's normal rate during the spike (conversations per hour):")
    for low, high in ((0, 5), (5, 10), (10, 20), (20, 1000)):
        rows = [d for s, d, h in results if s.size == 3.0 and low <= h < high]
        if rows:
            hits = [d for d in rows if d is not None]
            label = f"{low}-{high}/h" if high < 1000 else f">={low}/h"
            med = f"{statistics.median(hits):.0f} min" if hits else "-"
            print(f"  {label:>9}: {len(hits)}/{len(rows)} detected, median delay {med}")

    print(f"\ntargets: recall(3x) >= 0.9, precision >= 0.9, median delay <= one window ({settings.window_minutes} min)")
    print(f"  precision {precision:.3f}")
    print(f"  3x spikes, all topics and hours: {summary([d for s, d, _ in results if s.size == 3.0])}")
    print(
        "  3x spikes where the topic normally has >= 10 conversations an hour: "
        + summary([d for s, d, h in results if s.size == 3.0 and h >= 10])
    )
    print(f"  all sizes: {summary([d for _, d, _ in results])}")


if __name__ == "__main__":
    main()
