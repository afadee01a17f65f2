"""Suggested topics: a linear text classifier (scikit-learn) learned from conversations agents have tagged.

Suggestions are only ever shown; an agent confirms them by tagging. The model is retrained by the worker on a
schedule and by ``flask topics train``, and stored under INSTANCE_DIR (written to a temporary file and renamed,
so a reader never sees half a model). Each process reloads it when the file changes.

Features: TF-IDF of words (1-2 grams) and of character 2-5 grams inside words, which copes with typos,
inflected languages (the demo centre answers in English and Polish) and order numbers. Classifier: logistic
regression (one-vs-rest, fitted by SGD), whose probabilities rank the topics.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from flask import current_app
from sqlalchemy import select

from app.extensions import db
from app.models import Conversation, ConversationTopic, Message, Topic, utcnow

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

log = logging.getLogger(__name__)

MODEL_FILE = "topic_suggester.joblib"
MIN_SAMPLES = 10
MAX_TEXT_CHARS = 2000
INBOUND_MESSAGES = 3

_cache_lock = threading.Lock()
_cache: dict[str, Any] = {"key": None, "bundle": None}


def build_pipeline() -> Pipeline:
    """Return an untrained text → topic pipeline."""
    # scikit-learn is imported where it is used: it is large, and a web process needs it only for suggestions.
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import SGDClassifier
    from sklearn.pipeline import FeatureUnion, Pipeline

    features = FeatureUnion(
        [
            ("words", TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, strip_accents="unicode")),
            (
                "chars",
                TfidfVectorizer(
                    analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True, max_features=200_000
                ),
            ),
        ]
    )
    # Logistic regression fitted by SGD: the same probabilities to rank by, ten times faster to train than lbfgs.
    # Strong regularisation (alpha) costs a point on familiar wording and doubles accuracy on wording never seen.
    classifier = SGDClassifier(loss="log_loss", alpha=1e-3, max_iter=100, tol=1e-4, random_state=0)
    return Pipeline([("features", features), ("classifier", classifier)])


def fit(texts: Sequence[str], labels: Sequence[int]) -> Pipeline:
    """Train a pipeline on ``texts`` labelled with topic ids."""
    pipeline = build_pipeline()
    pipeline.fit(list(texts), list(labels))
    return pipeline


def rank(pipeline: Pipeline, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Return (labels ordered best first, their probabilities), one row per text."""
    probabilities = pipeline.predict_proba(list(texts))
    order = np.argsort(-probabilities, axis=1)
    classes = pipeline.classes_
    return classes[order], np.take_along_axis(probabilities, order, axis=1)


@dataclass(frozen=True)
class Accuracy:
    train: int
    test: int
    classes: int
    top1: float
    top3: float


def holdout_accuracy(texts: Sequence[str], labels: Sequence[int], *, test_size: float = 0.2, seed: int = 0) -> Accuracy:
    """Train on a stratified split and return top-1 and top-3 accuracy on the held-out part."""
    from sklearn.model_selection import train_test_split

    train_x, test_x, train_y, test_y = train_test_split(
        list(texts), list(labels), test_size=test_size, random_state=seed, stratify=list(labels)
    )
    pipeline = fit(train_x, train_y)
    ranked, _ = rank(pipeline, test_x)
    truth = np.asarray(test_y)
    top1 = float(np.mean(ranked[:, 0] == truth))
    top3 = float(np.mean((ranked[:, :3] == truth[:, None]).any(axis=1)))
    return Accuracy(len(train_x), len(test_x), len(set(labels)), top1, top3)


# Training data from the database ------------------------------------------------------------------------


def conversation_texts(conversation_ids: Sequence[int]) -> dict[int, str]:
    """Return what the customer said at the start of each conversation: subject and first inbound messages."""
    texts: dict[int, list[str]] = {cid: [] for cid in conversation_ids}
    if not conversation_ids:
        return {}
    for cid, subject in db.session.execute(
        select(Conversation.id, Conversation.subject).where(Conversation.id.in_(conversation_ids))
    ):
        if subject:
            texts[cid].append(subject)
    counts: dict[int, int] = {}
    for cid, body in db.session.execute(
        select(Message.conversation_id, Message.text)
        .where(
            Message.conversation_id.in_(conversation_ids),
            Message.direction == "in",
            Message.kind.in_(("message", "call")),
        )
        .order_by(Message.conversation_id, Message.created_at, Message.id)
    ):
        if counts.get(cid, 0) < INBOUND_MESSAGES and body:
            texts[cid].append(body)
            counts[cid] = counts.get(cid, 0) + 1
    return {cid: "\n".join(parts)[:MAX_TEXT_CHARS] for cid, parts in texts.items()}


def training_data(max_samples: int) -> tuple[list[str], list[int]]:
    """Return (texts, topic ids) from the newest tagged conversations; subtopics win over their parents."""
    topics = {t.id: t for t in db.session.scalars(select(Topic))}
    usable = {
        t.id for t in topics.values() if not t.archived and (t.parent_id is None or not topics[t.parent_id].archived)
    }
    recent = list(
        db.session.scalars(
            select(ConversationTopic.conversation_id)
            .group_by(ConversationTopic.conversation_id)
            .order_by(ConversationTopic.conversation_id.desc())
            .limit(max_samples)
        )
    )
    tags: dict[int, set[int]] = {}
    for start in range(0, len(recent), 5000):
        chunk = recent[start : start + 5000]
        for cid, topic_id in db.session.execute(
            select(ConversationTopic.conversation_id, ConversationTopic.topic_id).where(
                ConversationTopic.conversation_id.in_(chunk)
            )
        ):
            tags.setdefault(cid, set()).add(topic_id)
    texts_out: list[str] = []
    labels: list[int] = []
    for start in range(0, len(recent), 5000):
        chunk = recent[start : start + 5000]
        texts = conversation_texts(chunk)
        for cid in chunk:
            text = texts.get(cid, "").strip()
            if not text:
                continue
            chosen = tags.get(cid, set())
            # A conversation tagged "Delivery" and "Delivery / Late" teaches "Late".
            parents = {topics[t].parent_id for t in chosen if t in topics and topics[t].parent_id is not None}
            for topic_id in sorted(chosen - parents):
                if topic_id in usable:
                    texts_out.append(text)
                    labels.append(topic_id)
    return texts_out, labels


# The stored model ---------------------------------------------------------------------------------------


def model_path() -> Path:
    return Path(current_app.config["INSTANCE_DIR"]) / MODEL_FILE


@dataclass(frozen=True)
class TrainResult:
    samples: int
    classes: int
    trained: bool
    path: str | None
    reason: str = ""


def train(max_samples: int | None = None) -> TrainResult:
    """Retrain the suggester from tagged conversations and store it; keep the old model if there is too little."""
    max_samples = max_samples or int(
        current_app.config.get("SUGGEST_MAX_SAMPLES") or os.environ.get("SUGGEST_MAX_SAMPLES") or 20000
    )
    texts, labels = training_data(max_samples)
    db.session.commit()  # end the read transaction before the slow part
    classes = len(set(labels))
    if len(texts) < MIN_SAMPLES or classes < 2:
        reason = f"need at least {MIN_SAMPLES} tagged conversations over 2 topics (have {len(texts)} over {classes})"
        return TrainResult(len(texts), classes, False, None, reason)
    import joblib
    import sklearn

    pipeline = fit(texts, labels)
    bundle = {
        "pipeline": pipeline,
        "trained_at": utcnow().isoformat(),
        "samples": len(texts),
        "classes": classes,
        "sklearn": sklearn.__version__,
    }
    path = model_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".topic_suggester.", suffix=".tmp")
    os.close(fd)
    try:
        joblib.dump(bundle, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    log.info("topic suggester trained on %d conversations, %d topics", len(texts), classes)
    return TrainResult(len(texts), classes, True, str(path))


def load_model() -> dict[str, Any] | None:
    """Return the stored model bundle (cached until the file changes), or None when there is none usable."""
    path = model_path()
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    import joblib
    import sklearn

    key = (str(path), stat.st_mtime_ns, stat.st_size)
    with _cache_lock:
        if _cache["key"] == key:
            return _cache["bundle"]
        try:
            # Our own file, written by train(); never a file from outside INSTANCE_DIR.
            bundle = joblib.load(path)
        except Exception:
            log.exception("could not load the topic suggester at %s", path)
            bundle = None
        if bundle is not None and bundle.get("sklearn") != sklearn.__version__:
            log.warning("topic suggester was trained with scikit-learn %s; retrain it", bundle.get("sklearn"))
            bundle = None
        _cache.update(key=key, bundle=bundle)
        return bundle


def suggest_topics(conversation_id: int, *, limit: int = 3) -> list[dict[str, Any]]:
    """Return up to ``limit`` suggested topics for a conversation, best first, skipping ones it already has."""
    bundle = load_model()
    if bundle is None:
        return []
    text = conversation_texts([conversation_id]).get(conversation_id, "").strip()
    if not text:
        return []
    labels, scores = rank(bundle["pipeline"], [text])
    current = set(
        db.session.scalars(
            select(ConversationTopic.topic_id).where(ConversationTopic.conversation_id == conversation_id)
        )
    )
    topics = {t.id: t for t in db.session.scalars(select(Topic).where(Topic.id.in_([int(x) for x in labels[0]])))}
    suggestions = []
    for label, score in zip(labels[0], scores[0], strict=True):
        topic = topics.get(int(label))
        if topic is None or topic.archived or topic.id in current:
            continue
        parent = db.session.get(Topic, topic.parent_id) if topic.parent_id else None
        if parent is not None and parent.archived:
            continue
        suggestions.append(
            {
                "topic": {"id": topic.id, "name": topic.name, "colour": topic.colour, "parent_id": topic.parent_id},
                "path": f"{parent.name} / {topic.name}" if parent else topic.name,
                "score": round(float(score), 4),
            }
        )
        if len(suggestions) >= limit:
            break
    return suggestions


def model_info() -> dict[str, Any]:
    """Return when the stored model was trained and on how much, for the admin UI."""
    bundle = load_model()
    if bundle is None:
        return {"trained": False}
    trained_at = dt.datetime.fromisoformat(bundle["trained_at"])
    return {
        "trained": True,
        "trained_at": trained_at.isoformat().replace("+00:00", "Z"),
        "samples": bundle["samples"],
        "classes": bundle["classes"],
    }
