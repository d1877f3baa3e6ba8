"""Tokenizer, processor and architecture of the embedded tiny Qwen2-VL.

The tokenizer is a byte-level BPE trained here on the task texts, with the
Qwen2 pre-tokenizer and Qwen2-VL's special tokens, so stock transformers loads
it as a ``Qwen2Tokenizer``. Layer widths are multiples of 128 so that GPTQ/AWQ
group sizes 32, 64 and 128 divide every quantized in-feature.
"""

from __future__ import annotations

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import Qwen2Tokenizer, Qwen2VLConfig, Qwen2VLImageProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor

from recipes.tiny_model import tasks

VOCAB_SIZE = 512  # embedding rows; the tokenizer uses fewer, padded as Qwen pads to 151936
SPECIAL_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>",
    "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>", "<|box_end|>",
    "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
)
BPE_SIZE = 480 - len(SPECIAL_TOKENS)
PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"""
    r"""| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

# Qwen2-VL-Instruct's own chat template (system prompt added when absent).
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}"
    "Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}"
    "Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

TEXT = dict(
    hidden_size=256, intermediate_size=768, num_hidden_layers=4,
    num_attention_heads=4, num_key_value_heads=2, vocab_size=VOCAB_SIZE,
    max_position_embeddings=4096, rms_norm_eps=1e-6,
    rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [8, 12, 12]},
)
VISION = dict(
    depth=4, embed_dim=128, num_heads=4, mlp_ratio=4, hidden_size=256,
    patch_size=14, spatial_merge_size=2, temporal_patch_size=2, in_channels=3,
)
IMAGE_PIXELS = tasks.CANVAS * tasks.CANVAS


def _corpus(n_scenes: int = 4000):
    yield "system\nYou are a helpful assistant.\nuser\nassistant\n"
    for i in range(n_scenes):
        scene, qs = tasks.sample("train", i)
        for q in qs:
            yield f"{q.question}\n{q.answer}\n"


def build_tokenizer() -> Qwen2Tokenizer:
    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=BPE_SIZE, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    bpe.train_from_iterator(_corpus(), trainer=trainer)
    bpe.add_special_tokens(list(SPECIAL_TOKENS))  # ids follow the BPE vocab in Qwen's order
    vocab = bpe.get_vocab()
    merges = _merges(bpe)
    tok = Qwen2Tokenizer(
        vocab=vocab, merges=merges, errors="replace",
        unk_token=None, bos_token=None, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        additional_special_tokens=list(SPECIAL_TOKENS[1:]),
        model_max_length=TEXT["max_position_embeddings"],
    )
    tok.add_special_tokens({"additional_special_tokens": list(SPECIAL_TOKENS)})
    return tok


def _merges(bpe: Tokenizer) -> list[tuple[str, str]]:
    import json

    return [tuple(m) if isinstance(m, list) else tuple(m.split(" "))
            for m in json.loads(bpe.to_str())["model"]["merges"]]


def build_processor() -> Qwen2VLProcessor:
    size = {"shortest_edge": 56 * 56, "longest_edge": 28 * 28 * 1280}
    return Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(size=size),
        video_processor=Qwen2VLVideoProcessor(),
        tokenizer=build_tokenizer(),
        chat_template=CHAT_TEMPLATE,
    )


def build_config(tokenizer: Qwen2Tokenizer) -> Qwen2VLConfig:
    ids = tokenizer.convert_tokens_to_ids
    text = dict(TEXT, bos_token_id=ids("<|endoftext|>"), eos_token_id=ids("<|im_end|>"),
                pad_token_id=ids("<|endoftext|>"))
    return Qwen2VLConfig(
        text_config=text, vision_config=VISION,
        image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"),
        tie_word_embeddings=False, architectures=["Qwen2VLForConditionalGeneration"],
    )
