"""TF-IDF + logistic regression baseline (scikit-learn) trained on the same split."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["tfidf_baseline"]


def tfidf_baseline(
    train_texts: Sequence[str],
    train_labels: Sequence[int],
    test_texts: Sequence[str],
    test_labels: Sequence[int],
    *,
    language: str = "en",
    seed: int = 0,
) -> dict[str, float]:
    """Fit TF-IDF (word 1-2 grams; character 1-3 grams for Chinese) + logistic regression.

    Returns:
        ``{"accuracy": ..., "macro_f1": ...}`` on the test texts.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score

    if language == "zh":
        vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=2)
    else:
        vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    x_train = vec.fit_transform(train_texts)
    clf = LogisticRegression(C=4.0, max_iter=2000, random_state=seed)
    clf.fit(x_train, list(train_labels))
    pred = clf.predict(vec.transform(test_texts))
    return {
        "accuracy": float(accuracy_score(test_labels, pred)),
        "macro_f1": float(f1_score(test_labels, pred, average="macro")),
    }
