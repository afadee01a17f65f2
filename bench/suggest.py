"""Top-1 and top-3 accuracy of the topic suggester on held-out demo data.

1. The demo corpus (app.services.topic_corpus): 6,000 customer openers over the demo taxonomy's 12 subtopics,
   English and Polish, with greetings, context, sign-offs, typos, vague openers (~6 %), second issues (~10 %) and
   3 % of tags on a sibling subtopic. Stratified 80/20 split, the same pipeline the app trains.
2. Unseen phrasings: trained only on the other phrasings, tested on one English and one Polish way of putting
   each problem that never occurs in training (a harder, more honest figure for real traffic).
3. The seeded demo database (``flask seed-demo``): what `flask topics evaluate` reports on it, through the
   app's own training-data extraction (subject + first inbound messages of tagged conversations).

    .venv/bin/python bench/suggest.py [--size 6000]
"""

from __future__ import annotations

import argparse
import atexit
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.services.suggest import fit, holdout_accuracy, rank  # noqa: E402
from app.services.topic_corpus import OPENERS, corpus  # noqa: E402


def split_accuracy(size: int) -> None:
    data = corpus(size, seed=1)
    labels = {label: i for i, label in enumerate(OPENERS)}
    t = time.perf_counter()
    accuracy = holdout_accuracy([text for text, _ in data], [labels[label] for _, label in data], seed=0)
    print(
        f"1. demo corpus, stratified 80/20: train {accuracy.train}, test {accuracy.test}, {accuracy.classes} topics: "
        f"top-1 {accuracy.top1:.3f}, top-3 {accuracy.top3:.3f}  ({time.perf_counter() - t:.1f} s)"
    )


def unseen_accuracy(size: int) -> None:
    import numpy as np

    labels = {label: i for i, label in enumerate(OPENERS)}
    train = corpus(int(size * 0.8), seed=1, unseen=False)
    test = corpus(int(size * 0.2), seed=2, unseen=True, label_noise=0.0)
    pipeline = fit([t for t, _ in train], [labels[label] for _, label in train])
    ranked, _ = rank(pipeline, [t for t, _ in test])
    truth = np.array([labels[label] for _, label in test])
    top1 = float(np.mean(ranked[:, 0] == truth))
    top3 = float(np.mean((ranked[:, :3] == truth[:, None]).any(axis=1)))
    print(f"2. unseen phrasings: train {len(train)}, test {len(test)}: top-1 {top1:.3f}, top-3 {top3:.3f}")


def seeded_demo() -> None:
    from app import create_app
    from app.extensions import db
    from app.models import Base
    from app.services.demo import seed_demo
    from app.services.suggest import training_data

    folder = Path(tempfile.mkdtemp(prefix="sb-suggest-"))
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": f"sqlite:///{folder / 'demo.db'}",
            "INSTANCE_DIR": str(folder),
            "ATTACHMENTS_DIR": str(folder / "attachments"),
            "SECRET_KEY": "bench",
            "EMBEDDED_WORKER": False,
            "EMBEDDED_SMTP": False,
        }
    )
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    with app.app_context():
        Base.metadata.create_all(db.engine)
        seed_demo(customers=90, seed=7, password="bench-password")
        texts, labels = training_data(20000)
        counts = Counter(labels)
        keep = [i for i, label in enumerate(labels) if counts[label] >= 2]
        if len({labels[i] for i in keep}) < 2:
            print("3. seeded demo: too few tagged conversations")
            return
        accuracy = holdout_accuracy([texts[i] for i in keep], [labels[i] for i in keep])
        print(
            f"3. seeded demo database (90 customers): train {accuracy.train}, test {accuracy.test}, "
            f"{accuracy.classes} topics: top-1 {accuracy.top1:.3f}, top-3 {accuracy.top3:.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=6000)
    args = parser.parse_args()
    split_accuracy(args.size)
    unseen_accuracy(args.size)
    seeded_demo()


if __name__ == "__main__":
    main()
