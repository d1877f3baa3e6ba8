"""Teacher-forced log-probabilities: every model sees the same prompt + target tokens.

Batches are streamed and several models run on the same encoded batch, so
comparisons never need a whole dataset's vocabulary-sized distributions in
memory (152k-token vocabularies make that tens of GB).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from qtool.infer import IGNORE, answer_mask, user_turn


@dataclass
class ItemLogp:
    text_logp: torch.Tensor     # [text positions, vocab]: next-token log-probs wherever the next token is text
    answer_logp: torch.Tensor   # [answer tokens, vocab]
    answer_nll: torch.Tensor    # [answer tokens]


def encode_conversations(processor, images, prompts, targets):
    """Whole conversations (question + given answer) right-padded in one batch, and the mask of answer tokens."""
    texts = [processor.apply_chat_template(
        [user_turn(im, p), {"role": "assistant", "content": t}], tokenize=False)
        for im, p, t in zip(images, prompts, targets)]
    tok = processor.tokenizer
    side = tok.padding_side
    tok.padding_side = "right"
    try:
        enc = processor(text=texts, images=list(images), padding=True, return_tensors="pt")
    finally:
        tok.padding_side = side
    labels = answer_mask(enc["input_ids"], tok.encode("<|im_start|>assistant\n"),
                         tok.convert_tokens_to_ids("<|im_end|>"))
    return enc, labels


@torch.inference_mode()
def forced_logp(models: Sequence, processor, images, prompts, targets, batch_size: int = 16
                ) -> Iterator[list[list[ItemLogp]]]:
    """Yield, per batch, one list of ``ItemLogp`` per model (same items, same positions)."""
    image_token = models[0].config.image_token_id
    for start in range(0, len(prompts), batch_size):
        sl = slice(start, start + batch_size)
        enc, labels = encode_conversations(processor, images[sl], prompts[sl], targets[sl])
        ids, mask = enc["input_ids"], enc["attention_mask"].bool()
        nxt_text = (mask & (ids != image_token))[:, 1:]          # next token is real text
        nxt_answer = (labels != IGNORE)[:, 1:]
        per_model = []
        for model in models:
            logits = model(**enc.to(model.device)).logits[:, :-1].float().cpu()
            logp = torch.log_softmax(logits, dim=-1)
            items = []
            for row in range(ids.shape[0]):
                a = nxt_answer[row]
                targets_row = ids[row, 1:][a]
                answer = logp[row][a]
                items.append(ItemLogp(logp[row][nxt_text[row]], answer,
                                      -answer.gather(-1, targets_row.unsqueeze(-1)).squeeze(-1).double()))
            per_model.append(items)
        yield per_model
