"""Metric modules load offline through `evaluate` and compute what they promise."""

from __future__ import annotations

import pytest

from evals.metrics import load_metric, mean_stderr


def test_multiple_choice_acc_and_acc_norm_as_lm_eval():
    result = load_metric("multiple_choice").compute(
        loglikelihoods=[[-2.0, -2.0, -3.0], [-6.0, -5.0]], choice_lengths=[[1, 1, 1], [12, 2]], references=[1, 0]
    )
    assert result["predictions"] == [0, 1]  # a tie goes to the first choice (np.argmax)
    assert result["predictions_norm"] == [0, 0]  # -6/12 beats -5/2
    assert (result["acc"], result["acc_norm"]) == (0.0, 0.5)


def test_mean_stderr_is_lm_evals():
    from lm_eval.api.metrics import mean_stderr as theirs

    scores = [1.0, 0.0, 1.0, 1.0, 0.0]
    assert mean_stderr(scores) == pytest.approx(theirs(scores)) and mean_stderr([1.0]) is None


def test_short_answer_normalises_and_takes_the_best_reference():
    result = load_metric("short_answer").compute(predictions=["The Eiffel  Tower!", "blue whale", "no"], references=[["eiffel tower"], ["whale", "the blue whale"], ["yes"]])
    assert result["exact_match_scores"] == [1.0, 1.0, 0.0]
    assert result["f1"] == pytest.approx(2 / 3)


def test_error_rates_and_translation_scores():
    rates = load_metric("error_rate").compute(predictions=["hello world", "good night"], references=["Hello, world.", "good day"])
    assert rates["wer"] == pytest.approx(0.25) and rates["wer_scores"] == [0.0, 0.5]
    assert 0 < rates["cer"] < rates["wer"] * 2
    perfect = load_metric("translation").compute(predictions=["le chat dort sur la fenêtre"], references=[["le chat dort sur la fenêtre"]])
    poor = load_metric("translation").compute(predictions=["bonjour"], references=[["le chat dort"]])
    assert perfect["bleu"] == pytest.approx(100) and perfect["chrf"] == pytest.approx(100)
    assert poor["chrf"] < 30
