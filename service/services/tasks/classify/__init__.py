"""/v1/classify: a label per text, scored from the model's log-probabilities, calibrated.

How a text is classified:

1. The prompt goes through the model's chat template: a system turn that lists the labels (with
   their descriptions), one user/assistant pair per few-shot example, the text as the last user
   turn, then the assistant turn, opened with words the label naturally follows ("The
   sentiment of this text is"; "Category:" for custom labels; see labels.py).
2. Each label is scored as that turn's continuation: one engine request per (text, label), the
   prompt followed by the label's tokens, asking for prompt logprobs; a label's score is the sum of
   its tokens' log-probabilities. Every request of a call runs concurrently, so the engine's
   continuous batching serves them together. Nothing is sampled: the label is always one of the
   labels. When one label's tokens begin another's ("good" and "good service"), every label also
   scores the end of the turn, so the shorter one does not take the longer one's mass.
3. Contextual calibration: the same prompt scored with content-free texts ("N/A", "",
   "[MASK]") gives the prompt's own bias per label. Scores are normalised over the labels
   (log-softmax) and the content-free inputs' mean normalised score is subtracted, so a
   content-free text comes out uniform. These priors are cached per (engine, labels,
   descriptions, examples, template).
4. Single-label: a softmax of the calibrated scores (they sum to 1). Multi-label: each label gets
   sigmoid(calibrated score) = p(label | text) / (p(label | text) + p(label | content-free)),
   independent of the others: a label is chosen (>= 0.5) when the text makes it more likely than
   an empty text does. p(. | text) sums to 1 over the labels and the prior (a geometric mean
   of distributions) to at most 1, so some label is always chosen: `label`, the argmax in both
   modes, is always among `labels`.
"""

from service.services.tasks.classify.pipeline import PreparedClassify, classify, prepare

__all__ = ["PreparedClassify", "classify", "prepare"]
