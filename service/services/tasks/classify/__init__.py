"""/v1/classify: a label per text, scored from the model's log-probabilities, calibrated.

How a text is classified:

1. The prompt goes through the model's chat template: a system turn that lists the labels (with
   their descriptions), one user/assistant pair per few-shot example, the text as the last user
   turn, then the assistant turn, opened with words the label naturally follows ("The
   sentiment of this text is"; "Category:" for custom labels; see labels.py).
2. Each label is scored as that turn's continuation: log P(label tokens | prompt), the sum of its
   tokens' log-probabilities. By default (`classify_scoring` auto) from the logprobs of chosen
   token ids: a 1-token request per node of the labels' token trie asks for its next tokens,
   all sent at once and sharing the prompt's KV blocks through the prefix cache, so single-token
   labels cost one 1-token request per text and multi-token ones about a prompt's last partial
   block more per node (where the prompt spans no whole block, a request that forces one next
   token covers the child node too; scoring.py). Where the engine cannot give token-id logprobs
   (older vLLM, or a top-k logprobs request running: engine/vllm/logprob_modes.py), one
   prompt-logprobs request per (text, label) gives the same numbers. Nothing is sampled: the
   label is always one of the labels. When one label's tokens begin another's ("good" and "good
   service"), every label also scores the end of the turn, so the shorter one does not take the
   longer one's mass.
3. Contextual calibration: the same prompt scored with content-free texts of the text's language
   ("N/A", "", "[MASK]"; "无", "", "[MASK]" for Chinese, calibration.py) gives the prompt's own
   bias per label. Scores are normalised over the labels (log-softmax) and the content-free
   inputs' mean normalised score is subtracted, so a content-free text comes out uniform. These
   priors are cached per (engine, model or adapter, language, labels, descriptions, examples,
   template); the presets' are computed at start-up, before the gateway is ready (warm_up.py).
   A batch mixing languages is scored per language, in one engine batch.
4. Single-label: a softmax of the calibrated scores (they sum to 1). Multi-label: each label gets
   sigmoid(calibrated score) = p(label | text) / (p(label | text) + p(label | content-free)),
   independent of the others: a label is chosen (>= 0.5) when the text makes it more likely than
   an empty text does. p(. | text) sums to 1 over the labels and the prior (a geometric mean
   of distributions) to at most 1, so some label is always chosen: `label`, the argmax in both
   modes, is always among `labels`.
"""

from service.services.tasks.classify.pipeline import PreparedClassify, classify, prepare
from service.services.tasks.classify.warm_up import warm_up_priors

__all__ = ["PreparedClassify", "classify", "prepare", "warm_up_priors"]
