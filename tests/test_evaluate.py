"""Evaluation reads every span the same way: on the corpus tokens where there are some."""
from __future__ import annotations

from dataclasses import replace

from inference.ner import word_tags
from inference.schema import Article, Document, Entity, Relation, RelationMention, Span, label_spans
from training.evaluate import relation_scores, score_outcomes, scored_spans, type_confusion

# CoNLL04 keeps a sentence's full stop inside its last token: the gold entity is "Texas.".
TEXT = "Ann lives in Texas."
GOLD = Document("s", TEXT, [Span(0, 3, "Peop"), Span(13, 19, "Loc")], [RelationMention(0, 1, "Live_In")],
                tokens=[(0, 3), (4, 9), (10, 12), (13, 19)])
FOUND = Article("s", TEXT, [Entity("T1", 0, 3, "Ann", "Peop", 0.9), Entity("T2", 13, 18, "Texas", "Loc", 0.9)],
                [Relation("T1", "T2", "Live_In", 0.8)])


def test_a_prediction_covering_the_same_corpus_tokens_is_right_for_entities_and_relations_alike():
    assert scored_spans(GOLD, GOLD.entities) == scored_spans(GOLD, FOUND.entities) == [(0, 1, "Peop"), (3, 4, "Loc")]
    tags = [word_tags(GOLD.tokens, label_spans(mentions)) for mentions in (GOLD.entities, FOUND.entities)]
    assert tags[0] == tags[1] == ["B-Peop", "O", "O", "B-Loc"], "the entity F1 (seqeval on these tags) read tokens already"
    scores = relation_scores([GOLD], [FOUND.entities], [FOUND.relations], [])
    assert scores["strict"]["micro"]["f1"] == 1.0
    outcomes = score_outcomes([GOLD], [FOUND], [])
    assert outcomes["entities"].correct == [True, True] and outcomes["relations"].correct == [True]
    assert type_confusion([GOLD], [FOUND]) == {"Peop": {"Peop": 1}, "Loc": {"Loc": 1}}


def test_without_corpus_tokens_spans_must_match_character_for_character():
    raw = replace(GOLD, tokens=[])
    assert scored_spans(raw, FOUND.entities) == [(0, 3, "Peop"), (13, 18, "Loc")]
    assert relation_scores([raw], [FOUND.entities], [FOUND.relations], [])["strict"]["micro"]["f1"] == 0.0
    assert score_outcomes([raw], [FOUND], [])["entities"].correct == [True, False]


def test_a_wrong_type_or_a_token_too_many_is_still_wrong():
    longer = replace(FOUND, entities=[FOUND.entities[0], Entity("T2", 10, 19, "in Texas.", "Loc", 0.9)])
    retyped = replace(FOUND, entities=[FOUND.entities[0], Entity("T2", 13, 19, "Texas.", "Org", 0.9)])
    for article in (longer, retyped):
        assert relation_scores([GOLD], [article.entities], [article.relations], [])["strict"]["micro"]["f1"] == 0.0
        assert score_outcomes([GOLD], [article], [])["entities"].correct == [True, False]
